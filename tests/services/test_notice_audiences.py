"""Item 4 of issue 12: notices aimed right (missing tonight, on patrol, tomorrow, a point, a shift by
its date, time and point), an honest delivery summary and a resend to the unread on another channel."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from models import Attendance, ChatLink, Event, OutboxItem, PatrolPoint, Shift, Volunteer
from models.event import Assignment
from services.clock import fixed_clock, from_local
from services.messaging import (Audience, delivery_counts, delivery_page, delivery_summary, mark_read, preview_notice,
                                resend_unread, send_notice, shift_choices, shift_label)
from services.outbox import claim_due, mark_sent
from tests.services.test_channels import enable

TONIGHT = date(2027, 2, 10)
NOW = from_local(datetime(2027, 2, 10, 18, 30))
CLOCK = fixed_clock(NOW)


def at(hour: int, minute: int = 0, day: date = TONIGHT):
    return from_local(datetime(day.year, day.month, day.day, hour, minute))


@pytest.fixture
def night(session):
    """v0 on patrol at P1; v1 assigned to the 18:00 shift, not there (missing); v2 declined it;
    v3 assigned tomorrow; v4 assigned at 18:20 (within the grace); v5 unassigned."""
    vols = [Volunteer(name=f"丙{i}", phone=f"1362222000{i}", team="塘口居委" if i < 3 else "三林居委",
                      joined_on=date(2027, 1, 1)) for i in range(6)]
    p1, p2 = PatrolPoint(code="P1", name="浦锦路口"), PatrolPoint(code="P2", name="塘口公园")
    ev = Event(name="元宵", starts_on=TONIGHT, ends_on=TONIGHT + timedelta(days=1))
    session.add_all(vols + [p1, p2, ev])
    session.flush()
    s18 = Shift(event_id=ev.id, point_id=p1.id, starts_at=at(18), ends_at=at(22))
    s1820 = Shift(event_id=ev.id, point_id=p2.id, starts_at=at(18, 20), ends_at=at(22))
    tomorrow = Shift(event_id=ev.id, point_id=p2.id, starts_at=at(18, day=TONIGHT + timedelta(days=1)),
                     ends_at=at(22, day=TONIGHT + timedelta(days=1)))
    session.add_all([s18, s1820, tomorrow])
    session.flush()
    session.add_all([Assignment(shift_id=s18.id, volunteer_id=vols[0].id), Assignment(shift_id=s18.id, volunteer_id=vols[1].id),
                     Assignment(shift_id=s18.id, volunteer_id=vols[2].id, status="declined"),
                     Assignment(shift_id=tomorrow.id, volunteer_id=vols[3].id),
                     Assignment(shift_id=s1820.id, volunteer_id=vols[4].id)])
    session.add(Attendance(volunteer_id=vols[0].id, event_id=ev.id, shift_id=s18.id, point_id=p1.id,
                           check_in_at=at(17, 55), work_date=TONIGHT))
    session.commit()
    return {"v": vols, "p1": p1, "p2": p2, "s18": s18, "s1820": s1820, "tomorrow": tomorrow, "event": ev}


def _names(session, audience):
    from services.messaging import audience_volunteers
    ids = audience_volunteers(session, audience, clock=CLOCK)
    return sorted(session.scalars(select(Volunteer.name).where(Volunteer.id.in_(ids))))


def test_audiences_by_time_and_place(session, night):
    assert _names(session, Audience("missing")) == ["丙1"]
    assert _names(session, Audience("missing", grace_minutes=5)) == ["丙1", "丙4"]
    assert _names(session, Audience("on_patrol")) == ["丙0"]
    assert _names(session, Audience("tomorrow")) == ["丙3"]
    assert _names(session, Audience("point", night["p1"].id)) == ["丙0", "丙1"]
    assert _names(session, Audience("shift", night["s18"].id)) == ["丙0", "丙1"]
    assert preview_notice(session, Audience("missing"), clock=CLOCK).recipients == 1


def test_shifts_are_chosen_by_date_time_and_point(session, night):
    assert shift_label(night["s18"]) == "2月10日 18:00–22:00 浦锦路口（元宵）"
    labels = [label for _id, label in shift_choices(session, clock=CLOCK)]
    assert labels[0] == "2月10日 18:00–22:00 浦锦路口（元宵）" and "2月11日 18:00–22:00 塘口公园（元宵）" in labels
    assert "班次：2月10日 18:00–22:00 浦锦路口（元宵）" == Audience("shift", night["s18"].id).describe(session)


def test_summary_filters_and_resend_to_the_unread_on_another_channel(session, night):
    enable(session)  # SMS on: Telegram first, SMS second for the linked
    v = night["v"]
    session.add_all([ChatLink(chat_id=8000 + i, volunteer_id=v[i].id) for i in (0, 1)])
    session.commit()
    sent = send_notice(session, text="请尽快到岗", audience=Audience("point", night["p1"].id), nonce="n1",
                       created_by_user_id=None, clock=CLOCK)
    for item in claim_due(session, worker="t", clock=CLOCK):
        mark_sent(session, item.id, external_id="x", clock=CLOCK)
    session.commit()
    mark_read(session, v[0].id, [sent.message_id], clock=CLOCK)
    summary = delivery_summary(delivery_counts(session, sent.message_id))
    assert (summary.recipients, summary.delivered, summary.read, summary.unread) == (2, 2, 1, 1)
    assert [r.name for r in delivery_page(session, sent.message_id, show="unread").rows] == ["丙1"]
    result = resend_unread(session, sent.message_id, nonce="r1", clock=CLOCK)
    again = resend_unread(session, sent.message_id, nonce="r1", clock=CLOCK)
    assert (result.queued, result.no_other_channel, again.queued) == (1, 0, 0)
    resent = session.scalars(select(OutboxItem).where(OutboxItem.dedupe_key.like("%:resend:%"))).all()
    assert [(o.volunteer_id, o.channel) for o in resent] == [(v[1].id, "sms")]
    # Delivered on Telegram, resent by SMS: still one person, still delivered (a resend under way
    # does not undo a delivery), the SMS among the channels tried; nothing counted twice.
    rows = delivery_page(session, sent.message_id).rows
    row = next(r for r in rows if r.volunteer_id == v[1].id)
    assert len(rows) == 2 and row.status == "sent" and row.channel == "telegram" and row.tried == ("sms",)
    counts = delivery_counts(session, sent.message_id)
    assert (counts["total"], counts["sent"], counts["read"]) == (2, 2, 1)
    assert resend_unread(session, sent.message_id, nonce="r2", clock=CLOCK).in_progress == 1  # the SMS under way
