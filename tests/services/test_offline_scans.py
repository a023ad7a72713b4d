"""Scans a phone kept while offline: counted at the phone's time within OFFLINE_SCAN_MAX_DELAY and
flagged, refused (and listed for coordinators) when older, never rewriting a later record, safe to
retry with the same nonce; a late check-out replaces an auto-close."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Attendance, ScanRecord
from services.checkin import ScanRules, close_forgotten, parse_duration
from services.clock import fixed_clock
from services.errors import DomainError
from services.review import refused_offline_scans
from tests.services.test_checkin import World, local


@pytest.fixture
def w(session):
    return World(session)


def _records(session):
    session.expire_all()
    return session.scalars(select(ScanRecord).order_by(ScanRecord.id)).all()


def test_a_late_check_out_counts_at_the_phones_time_flagged_with_both_times(w, session):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    # scanned at 20:00 in a dead spot, sent at 20:40 when the signal came back
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 20, 40), nonce="q1", client_time=local(2027, 2, 5, 20, 0))
    assert r.action == "check_out" and r.scanned_at == local(2027, 2, 5, 20, 0)
    assert r.attendance.credited_minutes == 120 and "offline_late" in r.attendance.flags
    att = session.scalar(select(Attendance))
    assert att.check_out_at == local(2027, 2, 5, 20, 0) and att.review_status == "flagged"
    rec = _records(session)[-1]
    assert rec.client_time == local(2027, 2, 5, 20, 0) and rec.received_at == local(2027, 2, 5, 20, 40)
    assert rec.scanned_at == local(2027, 2, 5, 20, 0)
    # the queue retries (the answer was lost): the same nonce changes nothing
    again = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 20, 45), nonce="q1", client_time=local(2027, 2, 5, 20, 0))
    assert again.replayed and again.action == "check_out"
    assert len([x for x in _records(session) if x.action == "check_out"]) == 1


def test_a_scan_sent_within_two_minutes_counts_at_the_servers_time_unflagged(w, session):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 1), client_time=local(2027, 2, 5, 18, 0))
    assert r.scanned_at == local(2027, 2, 5, 18, 1) and r.flags == ()
    # a phone whose clock runs ahead is not believed either
    w.assign(shift, w.vols[1])
    r = w.scan(w.vols[1], w.p1, local(2027, 2, 5, 18, 1), client_time=local(2027, 2, 5, 23, 0))
    assert r.scanned_at == local(2027, 2, 5, 18, 1) and r.flags == ()


def test_a_late_check_in_counts_from_the_phones_time(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 30), client_time=local(2027, 2, 5, 18, 0))
    assert r.action == "check_in" and r.attendance.check_in_at == local(2027, 2, 5, 18, 0)
    assert "offline_late" in r.flags
    out = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 0))
    assert out.attendance.credited_minutes == 180


def test_exactly_at_the_bound_is_accepted_and_one_second_older_is_refused_and_listed(w, session):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 23))
    w.assign(shift, w.vols[0])
    w.assign(shift, w.vols[1])
    ok = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 20, 0), client_time=local(2027, 2, 5, 18, 0))
    assert ok.action == "check_in"
    with pytest.raises(DomainError) as exc:
        w.scan(w.vols[1], w.p1, local(2027, 2, 5, 20, 0, 1), nonce="old", client_time=local(2027, 2, 5, 18, 0))
    assert exc.value.code == "offline_too_old"
    assert "18:00" in exc.value.message and "2 小时" in exc.value.message
    assert session.scalar(select(Attendance).where(Attendance.volunteer_id == w.vols[1].id)) is None
    listed = refused_offline_scans(session)
    assert [(r.name, r.code, r.client_time, r.received_at) for r in listed] == [
        ("志愿者1", "offline_too_old", local(2027, 2, 5, 18, 0), local(2027, 2, 5, 20, 0, 1))]
    assert listed[0].point_name == "一号点"
    # a shorter bound from the configuration
    short = ScanRules(offline_max_delay=parse_duration("30m"))
    assert short.offline_max_delay == timedelta(minutes=30)
    with pytest.raises(DomainError) as exc:
        w.scan(w.vols[1], w.p1, local(2027, 2, 5, 20, 0), rules=short, client_time=local(2027, 2, 5, 19, 29))
    assert exc.value.code == "offline_too_old"


def test_a_late_scan_older_than_a_later_record_is_refused(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 30))
    with pytest.raises(DomainError) as exc:
        w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 40), client_time=local(2027, 2, 5, 18, 10))
    assert exc.value.code == "offline_superseded"


def test_a_late_check_out_replaces_the_auto_close_time_flagged(w, session):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    assert close_forgotten(session, clock=fixed_clock(local(2027, 2, 5, 21, 31)))
    att = session.scalar(select(Attendance))
    assert att.status == "auto_closed" and att.credited_minutes == 180
    # the check-out at 20:00 was kept on the phone and sent at 21:45, after the auto-close
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 45), client_time=local(2027, 2, 5, 20, 0))
    assert r.action == "check_out" and r.attendance.id == att.id
    assert r.attendance.credited_minutes == 120 and r.year_minutes == 120
    session.expire_all()
    att = session.scalar(select(Attendance))
    assert att.status == "closed" and att.check_out_at == local(2027, 2, 5, 20, 0)
    assert "offline_late" in att.flag_list and att.review_status == "flagged"
    assert session.scalar(select(Attendance).where(Attendance.id != att.id)) is None


def test_a_late_scan_after_the_check_out_window_is_not_a_check_out(w, session):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    close_forgotten(session, clock=fixed_clock(local(2027, 2, 5, 21, 31)))
    with pytest.raises(DomainError) as exc:
        w.scan(w.vols[0], w.p1, local(2027, 2, 5, 22, 30), client_time=local(2027, 2, 5, 21, 31))
    assert exc.value.code == "no_active_shift"
    assert session.scalar(select(Attendance)).status == "auto_closed"


def test_parse_duration_forms():
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("120") == timedelta(hours=2)
    assert parse_duration("90 min") == timedelta(minutes=90)
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_the_next_shift_says_when_scanning_opens(w, session):
    from services.checkin import next_shift_at
    w.shift(w.p1, local(2027, 2, 5, 18, 30), local(2027, 2, 5, 21))
    w.shift(w.p1, local(2027, 2, 6, 18, 30), local(2027, 2, 6, 21))
    nxt = next_shift_at(session, w.p1.id, clock=fixed_clock(local(2027, 2, 5, 17, 0)))
    assert nxt.starts_at == local(2027, 2, 5, 18, 30) and nxt.opens_at == local(2027, 2, 5, 18, 0)
    # once that one is open, the next is tomorrow's
    nxt = next_shift_at(session, w.p1.id, clock=fixed_clock(local(2027, 2, 5, 18, 1)))
    assert nxt.starts_at == local(2027, 2, 6, 18, 30)
    assert next_shift_at(session, w.p2.id, clock=fixed_clock(local(2027, 2, 5, 17, 0))) is None


def test_a_late_check_out_answers_the_programme_years_total_not_the_calendar_years(w, session):
    """A year from 1 March: December 2026 and February 2027 are one programme year (2026)."""
    from services.programme_year import set_year_start

    set_year_start(session, "03-01", by="test")
    session.commit()
    december = w.shift(w.p1, local(2026, 12, 10, 18), local(2026, 12, 10, 21))
    w.assign(december, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2026, 12, 10, 18, 0))
    assert w.scan(w.vols[0], w.p1, local(2026, 12, 10, 19, 0)).action == "check_out"
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18, 0))
    assert close_forgotten(session, clock=fixed_clock(local(2027, 2, 5, 21, 31)))
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 45), client_time=local(2027, 2, 5, 20, 0))
    assert r.action == "check_out" and r.year_minutes == 60 + 120
