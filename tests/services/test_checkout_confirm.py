"""A scan never ends a patrol by accident: an early check-out is asked about first, changes nothing
until confirmed, and a queued (offline) scan or a confirmed one checks out at once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Attendance, Event, ScanRecord
from services.checkin import ScanRules
from services.errors import DomainError
from tests.services.test_checkin import World, local


@pytest.fixture
def w(session):
    return World(session)


def test_a_second_scan_five_minutes_after_check_in_asks_and_changes_nothing(w, session):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0), nonce="n1")
    asked = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 5), nonce="n2", ask_before_ending=True)
    assert asked.action == "confirm_checkout"
    assert asked.elapsed_minutes == 5 and asked.shift_ends_at == local(2027, 2, 5, 21)
    assert asked.attendance.status == "open" and asked.attendance.point_name == "一号点"
    att = session.scalar(select(Attendance))
    assert att.status == "open" and att.check_out_at is None
    # the same nonce, now confirmed, checks out (the question did not use it up)
    done = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 6), nonce="n2")
    assert done.action == "check_out" and done.attendance.credited_minutes == 6
    # and a replay of the confirmed nonce answers the check-out again, changing nothing
    again = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 9), nonce="n2", ask_before_ending=True)
    assert again.replayed and again.action == "check_out"


def test_before_the_shift_end_it_asks_even_after_hours_and_after_the_end_it_does_not(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    assert w.scan(w.vols[0], w.p1, local(2027, 2, 5, 20, 50), ask_before_ending=True).action == "confirm_checkout"
    assert w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 1), ask_before_ending=True).action == "check_out"


def test_within_the_confirm_minutes_of_check_in_it_asks_even_after_the_shift_end(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 5))
    rules = ScanRules(checkout_confirm=timedelta(minutes=30))
    assert w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 20), rules=rules,
                  ask_before_ending=True).action == "confirm_checkout"
    short = ScanRules(checkout_confirm=timedelta(minutes=10))
    assert w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 20), rules=short, ask_before_ending=True).action == "check_out"


def test_another_point_of_the_same_campaign_says_where_the_patrol_started(w):
    s1 = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.p2, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(s1, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    asked = w.scan(w.vols[0], w.p2, local(2027, 2, 5, 19, 0), ask_before_ending=True)
    assert asked.action == "confirm_checkout"
    assert asked.point_name == "二号点" and asked.attendance.point_name == "一号点"


def test_a_point_of_another_campaign_is_refused_before_asking(w, session):
    other = Event(name="国庆巡逻", starts_on=w.event.starts_on, ends_on=w.event.ends_on)
    session.add(other)
    session.commit()
    s1 = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.far, local(2027, 2, 5, 18), local(2027, 2, 5, 21), event=other)
    w.assign(s1, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    with pytest.raises(DomainError) as exc:
        w.scan(w.vols[0], w.far, local(2027, 2, 5, 19, 0), ask_before_ending=True)
    assert exc.value.code == "wrong_event"


def test_the_question_is_kept_in_the_scan_log_without_its_nonce(w, session):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 5), nonce="q", ask_before_ending=True)
    rec = session.scalars(select(ScanRecord).where(ScanRecord.action == "confirm_checkout")).one()
    assert rec.nonce is None and rec.code == "ok"
    assert session.scalar(select(func.count()).select_from(Attendance).where(Attendance.status == "open")) == 1
