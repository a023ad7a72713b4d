"""Moving a shift after patrols were checked out moves their credit too (review, item 9)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Attendance, AttendanceCredit
from models.audit import CoordinatorAction
from services.clock import fixed_clock
from services.errors import DomainError
from services.events import save_shift
from tests.services.test_checkin import World, local


@pytest.fixture
def w(session):
    return World(session)


def _credit(w) -> tuple[int, list[tuple]]:
    w.session.expire_all()
    att = w.session.scalars(select(Attendance)).one()
    days = w.session.execute(select(AttendanceCredit.work_date, AttendanceCredit.minutes)
                             .order_by(AttendanceCredit.work_date)).all()
    return att.credited_minutes, [tuple(d) for d in days]


def test_editing_a_shifts_times_recomputes_the_credit_of_its_closed_records(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 17, 50))
    w.scan(v, w.p1, local(2027, 2, 5, 21, 10))
    assert _credit(w)[0] == 180
    at = fixed_clock(local(2027, 2, 6, 9))
    save_shift(w.session, w.event.id, "P1", local(2027, 2, 5, 18), local(2027, 2, 5, 20), 10,
               shift_id=shift.id, actor="user:1", clock=at)
    minutes, days = _credit(w)
    assert minutes == 120 and [m for _d, m in days] == [120]
    save_shift(w.session, w.event.id, "P2", local(2027, 2, 5, 17), local(2027, 2, 5, 22), 10,
               shift_id=shift.id, actor="user:1", clock=at)
    assert _credit(w)[0] == 200  # the whole presence, 17:50–21:10
    log = w.session.scalars(select(CoordinatorAction).order_by(CoordinatorAction.id)).all()
    assert [(e.actor, e.action, e.target) for e in log] == [("user:1", "edit_shift", f"shift:{shift.id}")] * 2
    assert "recredited=1" in log[0].detail and "ends_at=" in log[0].detail
    # A note or capacity change moves nothing and is not a time edit.
    save_shift(w.session, w.event.id, "P2", local(2027, 2, 5, 17), local(2027, 2, 5, 22), 12, note="x",
               shift_id=shift.id, actor="user:1", clock=at)
    assert len(w.session.scalars(select(CoordinatorAction)).all()) == 2


def test_moving_a_shift_to_another_day_moves_the_credit_to_that_day(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 22), local(2027, 2, 6, 2))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 22))
    w.scan(v, w.p1, local(2027, 2, 6, 2))
    assert _credit(w)[1] == [(local(2027, 2, 5, 12).date(), 120), (local(2027, 2, 6, 12).date(), 120)]
    save_shift(w.session, w.event.id, "P1", local(2027, 2, 6, 0), local(2027, 2, 6, 2), 10, shift_id=shift.id)
    minutes, days = _credit(w)
    assert minutes == 120 and days == [(local(2027, 2, 6, 12).date(), 120)]


def test_a_clash_still_refuses_and_changes_nothing(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    other = w.shift(w.p1, local(2027, 2, 5, 21), local(2027, 2, 5, 23))
    with pytest.raises(DomainError) as exc:
        save_shift(w.session, w.event.id, "P1", local(2027, 2, 5, 18), local(2027, 2, 5, 20), 10, shift_id=other.id)
    assert exc.value.code == "shift_taken"
    w.session.expire_all()
    assert w.session.get(type(other), other.id).starts_at == local(2027, 2, 5, 21)
    assert save_shift(w.session, w.event.id, "P2", local(2027, 2, 5, 18), local(2027, 2, 5, 20), 10).id
