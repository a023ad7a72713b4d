"""Back-to-back shifts at one point: a scan belongs to the volunteer's own shift (review, item 1)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Assignment, Attendance
from services.checkin import close_forgotten, current_shift_at
from services.clock import fixed_clock
from tests.services.test_checkin import World, local


@pytest.fixture
def w(session):
    return World(session)


def _back_to_back(w, capacity_a=10):
    a = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 20), capacity=capacity_a)
    b = w.shift(w.p1, local(2027, 2, 5, 20), local(2027, 2, 5, 22))
    return a, b


def test_an_early_scan_files_the_volunteer_under_their_own_shift_and_credits_the_whole_patrol(w):
    a, b = _back_to_back(w)
    v = w.vols[0]
    w.assign(b, v)
    shown = current_shift_at(w.session, w.p1.id, v.id, clock=fixed_clock(local(2027, 2, 5, 19, 45)))
    assert shown.id == b.id and shown.assigned  # the poster page names the right shift
    r = w.scan(v, w.p1, local(2027, 2, 5, 19, 45))
    assert r.action == "check_in" and r.attendance.shift_id == b.id and not r.attendance.walk_in
    r = w.scan(v, w.p1, local(2027, 2, 5, 22, 5))
    assert r.action == "check_out" and r.attendance.shift_id == b.id
    assert r.attendance.credited_minutes == 120  # B's start–end; nothing lost to A
    assert w.session.scalars(select(Attendance.shift_id)).all() == [b.id]
    # Someone not assigned anywhere still gets the shift the time falls in.
    assert w.scan(w.vols[1], w.p1, local(2027, 2, 5, 19, 45)).attendance.shift_id == a.id


def test_an_assigned_volunteer_is_not_refused_because_the_earlier_shift_is_full(w):
    a, b = _back_to_back(w, capacity_a=1)
    w.assign(a, w.vols[1])  # A has no walk-in place left
    w.assign(b, w.vols[0])
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 19, 45))
    assert r.action == "check_in" and r.attendance.shift_id == b.id


def test_a_declined_assignment_does_not_count_as_the_volunteers_shift(w):
    a, b = _back_to_back(w)
    w.session.add(Assignment(shift_id=b.id, volunteer_id=w.vols[0].id, status="declined"))
    w.session.commit()
    assert w.scan(w.vols[0], w.p1, local(2027, 2, 5, 19, 45)).attendance.shift_id == a.id


def test_checked_in_on_the_first_shift_and_assigned_to_the_next_a_scan_checks_out_then_in(w):
    a, b = _back_to_back(w)
    v = w.vols[0]
    w.assign(a, v)
    w.assign(b, v)
    assert w.scan(v, w.p1, local(2027, 2, 5, 17, 55)).attendance.shift_id == a.id
    r = w.scan(v, w.p1, local(2027, 2, 5, 20, 5))
    assert r.action == "check_out" and r.attendance.shift_id == a.id and r.attendance.credited_minutes == 120
    r = w.scan(v, w.p1, local(2027, 2, 5, 20, 7))
    assert r.action == "check_in" and r.attendance.shift_id == b.id
    r = w.scan(v, w.p1, local(2027, 2, 5, 22))
    assert r.action == "check_out" and r.attendance.credited_minutes == 113
    assert close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 6, 1))) == []
