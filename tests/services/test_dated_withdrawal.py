"""A withdrawal dated ahead leaves the bot and sign-in working until that date (review, item 13)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from models import Event, OutboxItem, PatrolPoint, Shift, Volunteer
from models.event import Assignment
from models.messaging import ChatLink
from services.board import tonight
from services.channels.sms_jobs import SmsJob, prepare_sms
from services.channels.survey_links import resolve_survey_token, survey_token
from services.clock import fixed_clock, from_local
from services.errors import DomainError
from services.events import assign_volunteers
from services.jobs import send_due_reminders
from services.messaging import Audience, audience_volunteers, chat_person, post_message, send_notice
from services.outbox import Recipient, claim_due
from services.surveys import create_round, remind_round, send_round
from services.signin import (confirm_login_link, issue_login_link, issue_pins, resolve_card, card_url)
from services.tokens import CodeSigner
from services.volunteers import withdraw_volunteer
from tests.conftest import utc

BEFORE = fixed_clock(utc(2027, 2, 27, 10, 0))   # 27 February, Shanghai
ON_THE_DAY = fixed_clock(utc(2027, 2, 28, 1, 0))  # 28 February 09:00, Shanghai
SIGNER = CodeSigner("test-secret-key")


@pytest.fixture
def leaving(session):
    v = Volunteer(name="张三", phone="13900000001", vest_no="PJ-0007", joined_on=date(2026, 1, 1))
    session.add(v)
    session.commit()
    session.add(ChatLink(chat_id=555, volunteer_id=v.id))
    session.commit()
    withdraw_volunteer(session, v.id, date(2027, 2, 28), clock=BEFORE, by="user:1")
    return v


def test_the_bot_still_knows_them_until_the_date(session, leaving):
    person = chat_person(session, 555, clock=BEFORE)
    assert person is not None and person.id == leaving.id
    assert chat_person(session, 555, clock=ON_THE_DAY) is None


def test_they_can_still_sign_in_until_the_date(session, leaving):
    url = issue_login_link(session, leaving.id, base_url="http://x", created_by="t", clock=BEFORE).url
    assert confirm_login_link(session, url.rsplit("/", 1)[1], clock=BEFORE).volunteer_id == leaving.id
    code = card_url("http://x", SIGNER, leaving).rsplit("/", 1)[1]
    assert resolve_card(session, SIGNER, code, clock=BEFORE).id == leaving.id
    assert set(issue_pins(session, [leaving.id], clock=BEFORE)) == {leaving.id}
    url = issue_login_link(session, leaving.id, base_url="http://x", created_by="t", clock=BEFORE).url
    for attempt in (lambda: confirm_login_link(session, url.rsplit("/", 1)[1], clock=ON_THE_DAY),
                    lambda: issue_login_link(session, leaving.id, base_url="http://x", created_by="t", clock=ON_THE_DAY),
                    lambda: resolve_card(session, SIGNER, code, clock=ON_THE_DAY)):
        with pytest.raises(DomainError) as exc:
            attempt()
        assert exc.value.code == "volunteer_withdrawn"
    assert issue_pins(session, [leaving.id], clock=ON_THE_DAY) == {}


# --- gap 2: everyone chosen for a message, survey or assignment follows the date too ----------------

@pytest.fixture
def three(session, leaving):
    """`leaving` (withdrawn from 28 February, so still on the roster on the 27th), `gone` (withdrawn
    from the 26th: yesterday-effective on the 27th) and `staying`."""
    gone = Volunteer(name="李四", phone="13900000002", vest_no="PJ-0008", joined_on=date(2026, 1, 1))
    staying = Volunteer(name="王五", phone="13900000003", vest_no="PJ-0009", joined_on=date(2026, 1, 1))
    session.add_all([gone, staying])
    session.commit()
    withdraw_volunteer(session, gone.id, date(2027, 2, 26), clock=BEFORE, by="user:1")
    return {"leaving": leaving, "gone": gone, "staying": staying}


def _names(session, ids):
    return sorted(session.scalars(select(Volunteer.name).where(Volunteer.id.in_(ids))))


def test_todays_notice_reaches_a_withdrawal_dated_tomorrow_not_one_in_effect(session, three):
    assert _names(session, audience_volunteers(session, Audience("all"), clock=BEFORE)) == ["张三", "王五"]
    assert _names(session, audience_volunteers(session, Audience("all"), clock=ON_THE_DAY)) == ["王五"]
    sent = send_notice(session, text="今晚加强巡逻", audience=Audience("all"), nonce="n1", created_by_user_id=None,
                       clock=BEFORE)
    assert sent.recipients == 2


def test_the_survey_asks_a_withdrawal_dated_tomorrow_and_its_link_works_until_then(session, three):
    r = create_round(session, "二月", opens_at=utc(2027, 2, 20, 2, 0), clock=BEFORE)
    asked = send_round(session, r.id, clock=BEFORE)
    assert asked.recipients == 2
    reminded = remind_round(session, r.id, clock=BEFORE)
    assert reminded.recipients == 2
    leaving = three["leaving"]
    token = survey_token("s", r.id, leaving.id)
    assert resolve_survey_token(session, "s", token, clock=BEFORE).volunteer_id == leaving.id
    with pytest.raises(DomainError):
        resolve_survey_token(session, "s", token, clock=ON_THE_DAY)
    with pytest.raises(DomainError):
        resolve_survey_token(session, "s", survey_token("s", r.id, three["gone"].id), clock=BEFORE)


def test_an_sms_goes_to_a_withdrawal_dated_tomorrow_not_to_one_in_effect(session, three):
    from tests.services.test_channels import enable

    enable(session)
    session.execute(update(ChatLink).values(unlinked_at=BEFORE()))
    post_message(session, kind="notice", title="通知", body="x", dedupe_key="s1", clock=BEFORE,
                 recipients=[Recipient(volunteer_id=three[k].id) for k in ("leaving", "gone")])
    # No chat linked: SMS is their first channel.
    items = {i.volunteer_id: i for i in claim_due(session, worker="t", channel="sms", clock=BEFORE)}
    assert isinstance(prepare_sms(session, items[three["leaving"].id], base_url="http://x", secret="s", clock=BEFORE),
                      SmsJob)
    gone = prepare_sms(session, items[three["gone"].id], base_url="http://x", secret="s", clock=BEFORE)
    assert not isinstance(gone, SmsJob) and gone.action == "moved"
    assert session.scalar(select(OutboxItem.status).where(OutboxItem.volunteer_id == three["gone"].id)) \
        not in ("pending", "sending", "sent")


@pytest.fixture
def shifts(session):
    point = PatrolPoint(code="P1", name="浦锦路口")
    event = Event(name="元宵", starts_on=date(2027, 2, 27), ends_on=date(2027, 2, 28))
    session.add_all([point, event])
    session.flush()
    evening = Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 27, 19, 0)),
                    ends_at=from_local(datetime(2027, 2, 27, 22, 0)))
    next_day = Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 28, 19, 0)),
                     ends_at=from_local(datetime(2027, 2, 28, 22, 0)))
    session.add_all([evening, next_day])
    session.commit()
    return evening, next_day


def test_assignments_follow_the_shifts_day(session, three, shifts):
    evening, next_day = shifts
    result = assign_volunteers(session, evening.id, ["13900000001", "13900000002", "PJ-0009"])
    assert result.added == 2 and result.not_found == ["13900000002"]
    later = assign_volunteers(session, next_day.id, ["13900000001", "PJ-0009"])
    assert later.added == 1 and later.not_found == ["13900000001"]


def test_reminders_and_the_board_keep_a_withdrawal_dated_after_the_shift(session, three, shifts):
    evening, _next_day = shifts
    session.add_all([Assignment(shift_id=evening.id, volunteer_id=three[k].id) for k in ("leaving", "gone", "staying")])
    session.commit()
    result = send_due_reminders(session, evening.starts_at - timedelta(hours=1), leads_hours=(2,))
    assert result.queued == 2
    board = tonight(session, clock=fixed_clock(evening.starts_at + timedelta(minutes=30)))
    row = board.campaigns[0].slots[0].points[0]
    assert row.expected == 2 and sorted(p.name for p in row.missing) == ["张三", "王五"]
