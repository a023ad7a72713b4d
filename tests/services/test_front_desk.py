"""The bot's front-desk rules as services, with a fixed clock: leave and confirmation of shifts,
notice drafts with one ending, the survey comment window."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from models import (Assignment, ChatLink, Event, Message, MessageRecipient, NoticeDraft, OutboxItem, PatrolPoint,
                    Shift, SurveyComment, User, Volunteer)
from services.assignments import confirm_shift, leave_list, my_shifts, request_leave, undo_leave
from services.clock import fixed_clock
from services.errors import DomainError
from services.messaging import MAX_NOTICE_LENGTH, check_notice_text, message_reach
from services.notice_drafts import cancel_draft, create_draft, send_draft
from services.settings import OFFICE_PHONE, set_setting
from services.surveys import add_comment, awaiting_comment, comments, create_round, record_answer, skip_comment
from services.users import create_user, set_team
from tests.conftest import utc

NOW = utc(2027, 2, 5, 2)          # 10:00 in Shanghai
START = utc(2027, 2, 5, 11)       # 19:00 in Shanghai


@pytest.fixture
def shift_setup(session):
    vol = Volunteer(name="钱二", phone="13700000002", team="塘口居委", joined_on=date(2026, 1, 1))
    event = Event(name="元宵节", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 5))
    point = PatrolPoint(code="P9", name="浦锦路口", radius_m=100)
    session.add_all([vol, event, point])
    session.flush()
    shift = Shift(event_id=event.id, point_id=point.id, starts_at=START, ends_at=START + timedelta(hours=3), capacity=5)
    session.add(shift)
    session.flush()
    session.add(Assignment(shift_id=shift.id, volunteer_id=vol.id))
    coord = create_user(session, "coord", "password-123", "coordinator")
    leader = create_user(session, "leader", "password-123", "leader")
    other_leader = create_user(session, "leader2", "password-123", "leader")
    set_team(session, leader.id, "塘口居委")
    set_team(session, other_leader.id, "丰顺居委")
    session.add(ChatLink(chat_id=7001, user_id=coord.id))
    session.commit()
    return {"vol": vol.id, "shift": shift.id, "coord": coord.id, "leader": leader.id, "other_leader": other_leader.id}


def test_leave_before_the_start_reaches_coordinators_and_the_team_leader_once(session, shift_setup):
    s = shift_setup
    first = request_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW))
    again = request_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW + timedelta(seconds=1)))
    assert first.changed and first.shift.status == "declined" and not again.changed
    msg = session.scalar(select(Message).where(Message.kind == "leave"))
    assert "钱二" in msg.title and "浦锦路口" in msg.body and "2027-02-05 19:00" in msg.body
    assert session.scalar(select(func.count(Message.id))) == 1  # a second tap tells no one twice
    to = set(session.scalars(select(MessageRecipient.user_id).where(MessageRecipient.message_id == msg.id)))
    assert to == {s["coord"], s["leader"]}  # not the other team's leader
    pushed = session.scalars(select(OutboxItem.status).where(OutboxItem.message_id == msg.id)).all()
    assert sorted(pushed) == ["not_linked", "pending"]  # the coordinator's chat gets a push
    assert [r.name for r in leave_list(session, clock=fixed_clock(NOW))] == ["钱二"]


def test_leave_after_the_start_is_refused_with_the_office_phone(session, shift_setup):
    set_setting(session, OFFICE_PHONE, "021-5888 0000", by="test")
    with pytest.raises(DomainError) as err:
        request_leave(session, shift_setup["shift"], shift_setup["vol"], clock=fixed_clock(START + timedelta(minutes=1)))
    assert err.value.code == "shift_started"
    assert "班次已开始，请直接联系平安办" in err.value.message and "021-5888 0000" in err.value.message
    assert session.scalar(select(Assignment.status)) == "assigned"
    assert session.scalar(select(func.count(Message.id))) == 0


def test_leave_can_be_undone_until_the_start_and_the_office_hears_it(session, shift_setup):
    s = shift_setup
    request_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW))
    back = undo_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW + timedelta(hours=1)))
    assert back.changed and back.shift.status == "confirmed"
    titles = session.scalars(select(Message.title).order_by(Message.id)).all()
    assert len(titles) == 2 and "撤销请假" in titles[1]
    assert leave_list(session, clock=fixed_clock(NOW)) == []
    request_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW + timedelta(hours=2)))
    with pytest.raises(DomainError) as err:
        undo_leave(session, s["shift"], s["vol"], clock=fixed_clock(START))
    assert err.value.code == "shift_started"


def test_flipping_leave_and_undo_makes_one_message_per_window_that_shows_the_latest(session, shift_setup):
    """Review item 14: leave / undo / leave ... twenty times in a few minutes used to be twenty
    messages (and Telegram pushes) to every coordinator and the leader."""
    s = shift_setup
    for i in range(20):
        fn = request_leave if i % 2 == 0 else undo_leave
        assert fn(session, s["shift"], s["vol"], clock=fixed_clock(NOW + timedelta(seconds=10 * i))).changed
    msgs = session.scalars(select(Message).where(Message.kind == "leave")).all()
    assert len(msgs) == 1 and msgs[0].title.startswith("撤销请假")  # the last change was an undo
    assert session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.message_id == msgs[0].id)) == 2
    pending = session.scalar(select(OutboxItem.payload).where(OutboxItem.status == "pending"))
    assert "撤销请假" in pending  # the not-yet-sent push says where things stand
    session.execute(MessageRecipient.__table__.update().values(read_at=NOW))
    session.commit()
    request_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW + timedelta(minutes=4)))
    assert session.scalar(select(func.count(MessageRecipient.id)).where(MessageRecipient.read_at.is_(None))) == 2
    # After the window a change is news again.
    undo_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW + timedelta(minutes=25)))
    assert session.scalar(select(func.count(Message.id)).where(Message.kind == "leave")) == 2


def test_confirm_twice_changes_once_and_statuses_show_in_progress(session, shift_setup):
    s = shift_setup
    with pytest.raises(DomainError) as err:
        undo_leave(session, s["shift"], s["vol"], clock=fixed_clock(NOW))  # there is no leave to undo
    assert err.value.code == "not_on_leave"
    assert confirm_shift(session, s["shift"], s["vol"], clock=fixed_clock(NOW)).changed
    assert not confirm_shift(session, s["shift"], s["vol"], clock=fixed_clock(NOW)).changed
    assert [x.status for x in my_shifts(session, s["vol"], clock=fixed_clock(NOW))] == ["confirmed"]
    during = my_shifts(session, s["vol"], clock=fixed_clock(START + timedelta(minutes=5)))
    assert [(x.status, x.can_change) for x in during] == [("in_progress", False)]
    assert session.scalar(select(func.count(Message.id))) == 0  # confirming is not news for the office


def test_someone_else_cannot_change_a_shift(session, shift_setup):
    stranger = Volunteer(name="路人", phone="13700000099", joined_on=date(2026, 1, 1))
    session.add(stranger)
    session.commit()
    with pytest.raises(DomainError) as err:
        request_leave(session, shift_setup["shift"], stranger.id, clock=fixed_clock(NOW))
    assert err.value.code == "not_assigned"


@pytest.fixture
def staff(session):
    vols = [Volunteer(name=f"丙{i}", phone=f"1360000000{i}", joined_on=date(2026, 1, 1)) for i in range(3)]
    session.add_all(vols)
    session.flush()
    session.add(ChatLink(chat_id=9100, volunteer_id=vols[0].id))
    user = create_user(session, "zhang", "password-123", "coordinator", "张主任")
    session.commit()
    return user.id


def test_a_draft_has_one_ending(session, staff):
    draft = create_draft(session, user_id=staff, chat_id=1, text="今晚加强巡逻", clock=fixed_clock(NOW))
    assert (draft.status, draft.recipients, draft.linked) == ("open", 3, 1)
    sent = send_draft(session, draft.id, user_id=staff, clock=fixed_clock(NOW))
    again = send_draft(session, draft.id, user_id=staff, clock=fixed_clock(NOW))
    assert sent.changed and not again.changed and sent.status == again.status == "sent"
    assert (sent.reach.recipients, sent.reach.pushed, sent.reach.web_only) == (3, 1, 2)
    assert session.scalar(select(func.count(Message.id))) == 1
    assert "—— 平安办 张主任" in session.scalar(select(Message.body))
    with pytest.raises(DomainError) as err:
        cancel_draft(session, draft.id, user_id=staff)
    assert err.value.code == "draft_sent"

    other = create_draft(session, user_id=staff, chat_id=1, text="取消的通知", clock=fixed_clock(NOW))
    assert cancel_draft(session, other.id, user_id=staff).changed
    assert not cancel_draft(session, other.id, user_id=staff).changed
    with pytest.raises(DomainError) as err:
        send_draft(session, other.id, user_id=staff)
    assert err.value.code == "draft_cancelled"
    assert session.scalar(select(func.count(Message.id))) == 1
    assert session.get(NoticeDraft, other.id).closed_at is not None


def test_a_draft_belongs_to_its_coordinator(session, staff):
    draft = create_draft(session, user_id=staff, chat_id=1, text="今晚加强巡逻")
    other = create_user(session, "li", "password-123", "coordinator")
    leader = create_user(session, "wang", "password-123", "leader")
    with pytest.raises(DomainError):
        send_draft(session, draft.id, user_id=other.id)
    with pytest.raises(DomainError):
        create_draft(session, user_id=leader.id, chat_id=2, text="队长不能发")
    assert session.scalar(select(func.count(Message.id))) == 0


def test_a_long_notice_is_refused_with_its_length(session, staff):
    text = "巡" * 2500
    with pytest.raises(DomainError) as err:
        create_draft(session, user_id=staff, chat_id=1, text=text)
    assert err.value.code == "too_long" and "2,500 字，最多 2,000 字" in err.value.message
    assert check_notice_text("巡" * MAX_NOTICE_LENGTH) == "巡" * MAX_NOTICE_LENGTH
    assert session.scalar(select(func.count(NoticeDraft.id))) == 0


def test_reach_counts_pushes_and_web_only(session, staff):
    draft = create_draft(session, user_id=staff, chat_id=1, text="x")
    sent = send_draft(session, draft.id, user_id=staff)
    reach = message_reach(session, session.scalar(select(Message.id)))
    assert reach == sent.reach


def test_comments_only_within_the_window_and_appended(session):
    vol = Volunteer(name="丁", phone="13600000010", joined_on=date(2026, 1, 1))
    session.add(vol)
    session.commit()
    r = create_round(session, "2027 一季度", opens_at=NOW - timedelta(days=1))
    first = record_answer(session, r.id, vol.id, 4, channel="telegram", clock=fixed_clock(NOW))
    assert first.changed and first.comment_until == NOW + timedelta(minutes=10)
    assert awaiting_comment(session, vol.id, clock=fixed_clock(NOW + timedelta(minutes=9))) == r.id
    add_comment(session, r.id, vol.id, "排班通知早一点", channel="telegram", clock=fixed_clock(NOW + timedelta(minutes=1)))
    add_comment(session, r.id, vol.id, "马甲再多一件", channel="telegram", clock=fixed_clock(NOW + timedelta(minutes=2)))
    assert [(c.text, c.created_at) for c in comments(session, r.id, vol.id)] == [
        ("排班通知早一点", NOW + timedelta(minutes=1)), ("马甲再多一件", NOW + timedelta(minutes=2))]
    later = NOW + timedelta(minutes=11)
    assert awaiting_comment(session, vol.id, clock=fixed_clock(later)) is None
    # The same score from an old message: nothing changes, the window stays shut.
    old_button = record_answer(session, r.id, vol.id, 4, channel="telegram", clock=fixed_clock(later))
    assert not old_button.changed and old_button.comment_until is None
    assert awaiting_comment(session, vol.id, clock=fixed_clock(later)) is None
    # A changed score opens a new window; 跳过 closes it.
    assert record_answer(session, r.id, vol.id, 5, channel="telegram", clock=fixed_clock(later)).changed
    assert skip_comment(session, r.id, vol.id) and not skip_comment(session, r.id, vol.id)
    assert awaiting_comment(session, vol.id, clock=fixed_clock(later)) is None
    assert session.scalar(select(func.count(SurveyComment.id))) == 2


def test_set_team_is_for_a_leader_account(session):
    leader = create_user(session, "lead", "password-123", "leader")
    set_team(session, leader.id, "  芦胜居委 ")
    assert session.get(User, leader.id).team == "芦胜居委"
    with pytest.raises(DomainError):
        set_team(session, leader.id, "居" * 65)


def test_a_comment_sent_twice_is_kept_once_and_a_round_takes_a_bounded_number(session):
    """A second tap on 提交 must not double a comment; one signed-in phone must not fill the table."""
    from services.surveys import MAX_COMMENTS

    vol = Volunteer(name="丙", phone="13600000011", joined_on=date(2026, 1, 1))
    session.add(vol)
    session.commit()
    r = create_round(session, "2027 二季度", opens_at=NOW - timedelta(days=1))
    record_answer(session, r.id, vol.id, 3, channel="web", clock=fixed_clock(NOW))
    assert add_comment(session, r.id, vol.id, "路灯太暗", clock=fixed_clock(NOW))
    assert add_comment(session, r.id, vol.id, " 路灯太暗 ", clock=fixed_clock(NOW))
    assert [c.text for c in comments(session, r.id, vol.id)] == ["路灯太暗"]
    for i in range(MAX_COMMENTS - 1):
        add_comment(session, r.id, vol.id, f"第{i}条", clock=fixed_clock(NOW))
    with pytest.raises(DomainError) as refused:
        add_comment(session, r.id, vol.id, "再一条", clock=fixed_clock(NOW))
    assert refused.value.code == "too_many_comments"
    assert session.scalar(select(func.count(SurveyComment.id))) == MAX_COMMENTS
