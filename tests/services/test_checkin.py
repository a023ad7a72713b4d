"""The scan rule, with a fixed clock (times are Shanghai wall-clock unless said otherwise)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Assignment, Attendance, AttendanceCredit, Event, PatrolPoint, ScanRecord, Shift, Volunteer
from services.checkin import ScanRules, close_forgotten, scan
from services.clock import fixed_clock, from_local
from services.errors import DomainError
from services.hours import split_by_day, volunteer_hours
from services.qr import point_token
from services.tokens import CodeSigner

SIGNER = CodeSigner("test-secret")
P1 = (31.0689, 121.5049)
P2 = (31.0699, 121.5049)      # ~111 m north of P1
FAR = (31.1689, 121.5049)     # ~11 km north


def local(*args) -> datetime:
    return from_local(datetime(*args))


class World:
    def __init__(self, session):
        self.session = session
        self.event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
        self.p1 = PatrolPoint(code="P1", name="一号点", lat=P1[0], lon=P1[1], radius_m=100)
        self.p2 = PatrolPoint(code="P2", name="二号点", lat=P2[0], lon=P2[1], radius_m=100)
        self.far = PatrolPoint(code="P3", name="远处点", lat=FAR[0], lon=FAR[1], radius_m=100)
        session.add_all([self.event, self.p1, self.p2, self.far])
        session.flush()
        self.vols = []
        for i in range(6):
            v = Volunteer(name=f"志愿者{i}", phone=f"1390000000{i}", joined_on=date(2026, 1, 1))
            session.add(v)
            self.vols.append(v)
        session.commit()

    def shift(self, point, start, end, capacity=10, event=None) -> Shift:
        s = Shift(event_id=(event or self.event).id, point_id=point.id, starts_at=start, ends_at=end, capacity=capacity)
        self.session.add(s)
        self.session.commit()
        return s

    def assign(self, shift, vol):
        self.session.add(Assignment(shift_id=shift.id, volunteer_id=vol.id))
        self.session.commit()

    def scan(self, vol, point, at: datetime, *, rules=ScanRules(), where=None, **kw):
        lat, lon = where if where else (point.lat, point.lon)
        return scan(self.session, vol.id if vol else None, point_token(SIGNER, point), signer=SIGNER, rules=rules,
                    clock=fixed_clock(at), lat=lat, lon=lon, **kw)


@pytest.fixture
def w(session):
    return World(session)


def refused(fn) -> str:
    with pytest.raises(DomainError) as exc:
        fn()
    return exc.value.code


def test_check_in_then_out_credits_the_overlap_with_the_shift(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 17, 40))  # 20 min early: allowed, earns nothing
    assert r.action == "check_in" and r.attendance.status == "open" and not r.attendance.walk_in
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 21, 20))  # 20 min late
    assert r.action == "check_out"
    assert r.attendance.credited_minutes == 180 and r.attendance.credited_hours == 3.0
    assert r.year_minutes == 180
    assert r.attendance.status == "closed" and r.attendance.flags == ()


def test_window_edges(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    assert refused(lambda: w.scan(v, w.p1, local(2027, 2, 5, 17, 29, 59))) == "no_active_shift"
    assert w.scan(v, w.p1, local(2027, 2, 5, 17, 30)).action == "check_in"
    v2 = w.vols[1]
    assert w.scan(v2, w.p1, local(2027, 2, 5, 21, 30)).action == "check_in"
    assert refused(lambda: w.scan(w.vols[2], w.p1, local(2027, 2, 5, 21, 30, 1))) == "no_active_shift"
    records = w.session.scalars(select(ScanRecord.code).order_by(ScanRecord.id)).all()
    assert records == ["no_active_shift", "ok", "ok", "no_active_shift"]


def test_checkout_in_the_after_window_and_partial_credit(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 19, 15))
    r = w.scan(v, w.p1, local(2027, 2, 5, 20, 45, 59))
    assert r.attendance.credited_minutes == 90  # whole minutes
    assert r.attendance.credited_hours == 1.5


def test_overlapping_windows_pick_the_containing_shift_else_the_nearest_start(w):
    early = w.shift(w.p1, local(2027, 2, 5, 14), local(2027, 2, 5, 18))
    late = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 17, 50))  # both windows; contained in early
    assert r.attendance.shift_id == early.id
    r = w.scan(w.vols[1], w.p1, local(2027, 2, 5, 18, 10))  # contained in late
    assert r.attendance.shift_id == late.id
    gap_a = w.shift(w.p2, local(2027, 2, 5, 8), local(2027, 2, 5, 10))
    gap_b = w.shift(w.p2, local(2027, 2, 5, 10, 40), local(2027, 2, 5, 12))
    r = w.scan(w.vols[2], w.p2, local(2027, 2, 5, 10, 25))  # in neither start–end; b starts nearest
    assert r.attendance.shift_id == gap_b.id
    r = w.scan(w.vols[3], w.p2, local(2027, 2, 5, 10, 5))   # only a's window is open yet
    assert r.attendance.shift_id == gap_a.id
    short = w.shift(w.far, local(2027, 2, 5, 10), local(2027, 2, 5, 10, 5))
    w.shift(w.far, local(2027, 2, 5, 10, 30), local(2027, 2, 5, 11))
    r = w.scan(w.vols[4], w.far, local(2027, 2, 5, 10, 12), where=FAR)  # 12 min after a, 18 min before b
    assert r.attendance.shift_id == short.id


def test_walk_in_capacity_and_assigned_never_refused(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21), capacity=3)
    w.assign(shift, w.vols[0])
    w.assign(shift, w.vols[1])
    at = local(2027, 2, 5, 18, 5)
    r = w.scan(w.vols[2], w.p1, at)
    assert r.attendance.walk_in  # 1 walk-in place = 3 - 2 assignments
    assert refused(lambda: w.scan(w.vols[3], w.p1, at)) == "shift_full"
    assert w.scan(w.vols[0], w.p1, at).action == "check_in"
    assert w.scan(w.vols[1], w.p1, at).action == "check_in"
    # more assigned than capacity: still never refused
    w.assign(shift, w.vols[4])
    assert w.scan(w.vols[4], w.p1, at).action == "check_in"


def test_debounce_is_a_duplicate_and_changes_nothing(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    first = w.scan(v, w.p1, local(2027, 2, 5, 18, 0, 0))
    again = w.scan(v, w.p1, local(2027, 2, 5, 18, 0, 59))
    assert again.action == "duplicate" and again.attendance.id == first.attendance.id
    assert again.attendance.status == "open"
    out = w.scan(v, w.p1, local(2027, 2, 5, 18, 1, 0))
    assert out.action == "check_out"
    dup = w.scan(v, w.p1, local(2027, 2, 5, 18, 1, 30))
    assert dup.action == "duplicate" and dup.attendance.status == "closed"
    assert w.session.scalar(select(func.count(Attendance.id))) == 1
    custom = ScanRules(debounce=timedelta(seconds=5))
    assert w.scan(v, w.p1, local(2027, 2, 5, 18, 1, 6), rules=custom).action == "check_in"


def test_nonce_replay_returns_the_first_answer_unchanged(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    first = w.scan(v, w.p1, local(2027, 2, 5, 18, 0), nonce="n-1")
    replay = w.scan(v, w.p1, local(2027, 2, 5, 19, 30), nonce="n-1")
    assert replay.replayed and replay.action == "check_in"
    assert replay.attendance == first.attendance and replay.scanned_at == first.scanned_at
    assert w.session.scalar(select(func.count(ScanRecord.id))) == 1
    # a refused answer replays as the same refusal, even once the reason is gone
    other = w.vols[1]
    assert refused(lambda: w.scan(other, w.far, local(2027, 2, 5, 19, 0), nonce="n-2")) == "no_active_shift"
    w.shift(w.far, local(2027, 2, 5, 18), local(2027, 2, 5, 21), event=w.event)
    assert refused(lambda: w.scan(other, w.far, local(2027, 2, 5, 19, 0), nonce="n-2")) == "no_active_shift"
    assert w.scan(other, w.far, local(2027, 2, 5, 19, 0), nonce="n-3").action == "check_in"


def test_next_scan_at_another_point_of_the_same_event_checks_out(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.p2, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18))
    r = w.scan(v, w.p2, local(2027, 2, 5, 20))
    assert r.action == "check_out" and r.attendance.credited_minutes == 120
    other = Event(name="元旦", starts_on=date(2027, 1, 1), ends_on=date(2027, 1, 1))
    w.session.add(other)
    w.session.commit()
    w.shift(w.far, local(2027, 2, 5, 18), local(2027, 2, 5, 23), event=other)
    w.scan(v, w.p1, local(2027, 2, 5, 20, 30))
    assert refused(lambda: w.scan(v, w.far, local(2027, 2, 5, 20, 45), where=FAR)) == "wrong_event"


def test_auto_close_credits_up_to_the_shift_end_and_flags(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18, 30))
    assert close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 5, 21, 30))) == []  # window still open
    closed = close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 5, 21, 31)))
    assert len(closed) == 1
    att = w.session.get(Attendance, closed[0])
    w.session.refresh(att)
    assert (att.status, att.credited_minutes, att.review_status) == ("auto_closed", 150, "flagged")
    assert "auto_closed" in att.flag_list and att.check_out_at == local(2027, 2, 5, 21)
    assert close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 6, 9))) == []  # idempotent


def test_a_scan_after_a_forgotten_checkout_closes_the_old_one_and_checks_in(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.p1, local(2027, 2, 6, 18), local(2027, 2, 6, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18))
    r = w.scan(v, w.p1, local(2027, 2, 6, 18))
    assert r.action == "check_in"
    statuses = w.session.scalars(select(Attendance.status).order_by(Attendance.id)).all()
    assert statuses == ["auto_closed", "open"]


def test_daily_cap_of_12_hours_is_per_shanghai_calendar_day(w):
    # 08:00–20:00 then 20:00–02:00 the next day (Shanghai). UTC midnight (08:00 Shanghai) is irrelevant.
    day = w.shift(w.p1, local(2027, 2, 5, 7), local(2027, 2, 5, 20))
    night = w.shift(w.p2, local(2027, 2, 5, 20), local(2027, 2, 6, 2))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 7))
    a = w.scan(v, w.p1, local(2027, 2, 5, 20))
    assert a.attendance.credited_minutes == 13 * 60 - 60  # 13 h capped to 12 h
    assert "daily_cap" in a.attendance.flags
    w.scan(v, w.p2, local(2027, 2, 5, 20, 2), where=P2)
    b = w.scan(v, w.p2, local(2027, 2, 6, 2), where=P2)
    # 20:02–24:00 falls on a day already at 12 h; 00:00–02:00 belongs to 6 Feb
    assert b.attendance.credited_minutes == 120
    credits = dict(w.session.execute(select(AttendanceCredit.work_date, func.sum(AttendanceCredit.minutes))
                                     .group_by(AttendanceCredit.work_date)).all())
    assert credits == {date(2027, 2, 5): 720, date(2027, 2, 6): 120}
    assert day.id != night.id


def test_split_by_day_uses_shanghai_midnight():
    parts = split_by_day(local(2027, 2, 5, 23, 0), local(2027, 2, 6, 1, 30))
    assert parts == [(date(2027, 2, 5), 60), (date(2027, 2, 6), 90)]
    # 23:00–01:30 UTC is 07:00–09:30 Shanghai: one day
    from tests.conftest import utc
    assert split_by_day(utc(2027, 2, 5, 23), utc(2027, 2, 6, 1, 30)) == [(date(2027, 2, 6), 150)]


def test_new_years_eve_patrol_credits_both_years(w):
    w.shift(w.p1, local(2026, 12, 31, 22), local(2027, 1, 1, 2))
    v = w.vols[0]
    w.scan(v, w.p1, local(2026, 12, 31, 22))
    w.scan(v, w.p1, local(2027, 1, 1, 2))
    assert volunteer_hours(w.session, v.id, 2026).verified_minutes == 120
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == 120


@pytest.mark.parametrize("mode,where,expect", [
    ("flag", P1, ("check_in", ())),
    ("flag", FAR, ("check_in", ("outside_geofence",))),
    ("flag", None, ("check_in", ("no_location",))),
    ("enforce", P1, ("check_in", ())),
    ("enforce", FAR, "outside_geofence"),
    ("enforce", None, "no_location"),
    ("off", FAR, ("check_in", ())),
    ("off", None, ("check_in", ())),
])
def test_geofence_in_all_three_modes(w, mode, where, expect):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    rules = ScanRules(geofence_mode=mode)
    call = lambda: scan(w.session, w.vols[0].id, point_token(SIGNER, w.p1), signer=SIGNER, rules=rules,  # noqa: E731
                        clock=fixed_clock(local(2027, 2, 5, 18)), lat=where[0] if where else None,
                        lon=where[1] if where else None)
    if isinstance(expect, str):
        assert refused(call) == expect
        assert w.session.scalar(select(func.count(Attendance.id))) == 0
    else:
        r = call()
        assert (r.action, r.attendance.flags) == expect
        att = w.session.get(Attendance, r.attendance.id)
        assert att.review_status == ("flagged" if expect[1] else "none")


def test_accuracy_widens_the_fence_but_only_so_far(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    near_edge = (P1[0] + 0.0015, P1[1])  # ~167 m
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), where=near_edge, accuracy=80)
    assert r.attendance.flags == ()
    r = w.scan(w.vols[1], w.p1, local(2027, 2, 5, 18), where=(P1[0] + 0.004, P1[1]), accuracy=2000)
    assert r.attendance.flags == ("outside_geofence",)


def test_shared_device_and_fast_travel_are_flagged(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.far, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), device_id=7)
    r = w.scan(w.vols[1], w.p1, local(2027, 2, 5, 18, 5), device_id=7)
    assert "shared_device" in r.attendance.flags
    # 11 km in 10 minutes = 66 km/h
    r = w.scan(w.vols[0], w.far, local(2027, 2, 5, 18, 10), where=FAR)
    assert r.action == "check_out" and "fast_travel" in r.attendance.flags


def test_revoked_and_tampered_and_inactive_points(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    token = point_token(SIGNER, w.p1)
    w.p1.key_version += 1
    w.session.commit()
    at = fixed_clock(local(2027, 2, 5, 18))
    assert refused(lambda: scan(w.session, w.vols[0].id, token, signer=SIGNER, clock=at)) == "point_revoked"
    assert refused(lambda: scan(w.session, w.vols[0].id, token[:-2] + "xx", signer=SIGNER, clock=at)) == "bad_token"
    w.p1.active = False
    w.session.commit()
    assert refused(lambda: scan(w.session, w.vols[0].id, point_token(SIGNER, w.p1), signer=SIGNER,
                                clock=at)) == "point_inactive"
    assert refused(lambda: scan(w.session, None, token, signer=SIGNER, clock=at)) == "not_signed_in"
    codes = w.session.scalars(select(ScanRecord.code).order_by(ScanRecord.id)).all()
    # A scan from a phone that is not signed in is counted, not recorded (issue 10, item 15).
    assert codes == ["point_revoked", "bad_token", "point_inactive"]


def test_withdrawn_volunteer_is_refused(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.vols[0].status = "withdrawn"
    w.session.commit()
    assert refused(lambda: w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18))) == "volunteer_withdrawn"


def test_rules_come_from_config():
    rules = ScanRules.from_config({"GEOFENCE_MODE": "enforce", "SCAN_DEBOUNCE_SECONDS": "90", "DAILY_CAP_HOURS": "10"})
    assert (rules.geofence_mode, rules.debounce, rules.daily_cap_minutes) == ("enforce", timedelta(seconds=90), 600)
    with pytest.raises(ValueError):
        ScanRules.from_config({"GEOFENCE_MODE": "strict"})


# --- issue 9: rule corrections -------------------------------------------------------------------

def test_walk_in_places_are_held_by_people_not_records_and_rejected_ones_hold_none(w):
    from models import User
    from services.review import review_attendance

    user = User(username="coord", password_hash="x", role="coordinator")
    w.session.add(user)
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 23), capacity=2)
    w.assign(shift, w.vols[0])                      # 2 - 1 assignment = 1 walk-in place
    walker = w.vols[1]
    assert w.scan(walker, w.p1, local(2027, 2, 5, 18, 5)).attendance.walk_in
    assert w.scan(walker, w.p1, local(2027, 2, 5, 19)).action == "check_out"       # dinner
    back = w.scan(walker, w.p1, local(2027, 2, 5, 19, 40))                          # same person: same place
    assert back.action == "check_in" and back.attendance.walk_in
    assert refused(lambda: w.scan(w.vols[2], w.p1, local(2027, 2, 5, 19, 45))) == "shift_full"
    w.scan(walker, w.p1, local(2027, 2, 5, 20))
    for att_id in w.session.scalars(select(Attendance.id).where(Attendance.volunteer_id == walker.id)).all():
        review_attendance(w.session, att_id, "rejected", reason="不在岗", by_user_id=user.id, clock=fixed_clock(local(2027, 2, 5, 20, 5)))
    assert w.scan(w.vols[2], w.p1, local(2027, 2, 5, 20, 10)).action == "check_in"  # the rejected place is free
    assert refused(lambda: w.scan(w.vols[3], w.p1, local(2027, 2, 5, 20, 15))) == "shift_full"


def test_auto_close_never_stamps_a_check_out_before_the_check_in(w):
    from services.review import list_attendances

    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.p1, local(2027, 2, 6, 18), local(2027, 2, 6, 21))
    late, other = w.vols[0], w.vols[1]
    w.scan(late, w.p1, local(2027, 2, 5, 21, 10))    # in the after-window: earns nothing
    w.scan(other, w.p1, local(2027, 2, 5, 21, 20))
    assert close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 5, 21, 31))) != []
    att = w.session.scalar(select(Attendance).where(Attendance.volunteer_id == late.id))
    w.session.refresh(att)
    assert att.check_out_at == att.check_in_at == local(2027, 2, 5, 21, 10)
    assert (att.status, att.credited_minutes, att.review_status) == ("auto_closed", 0, "flagged")
    assert "auto_closed" in att.flag_list
    # the same when the forgotten record is closed by the volunteer's next scan
    w.session.execute(Attendance.__table__.update().where(Attendance.volunteer_id == other.id)
                      .values(status="open", check_out_at=None, flags="", review_status="none"))
    w.session.commit()
    assert w.scan(other, w.p1, local(2027, 2, 6, 18)).action == "check_in"
    rows = {r.check_in_at: r for r in list_attendances(w.session, volunteer_id=other.id).rows}
    first = rows[local(2027, 2, 5, 21, 20)]
    assert first.check_out_at == first.check_in_at and first.credited_minutes == 0 and "auto_closed" in first.flags


def test_no_minute_is_lost_at_midnight(w):
    from io import BytesIO

    from openpyxl import load_workbook

    from services.exports import hours_roster_xlsx

    assert split_by_day(local(2027, 2, 5, 23, 0, 30), local(2027, 2, 6, 1, 0, 45)) == \
        [(date(2027, 2, 5), 59), (date(2027, 2, 6), 61)]
    w.shift(w.p1, local(2027, 2, 5, 23), local(2027, 2, 6, 1, 30))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 23, 0, 30))
    out = w.scan(v, w.p1, local(2027, 2, 6, 1, 0, 45))
    assert out.attendance.credited_minutes == 120 and out.year_minutes == 120
    parts = w.session.execute(select(AttendanceCredit.work_date, AttendanceCredit.minutes)
                              .order_by(AttendanceCredit.work_date)).all()
    assert [tuple(p) for p in parts] == [(date(2027, 2, 5), 59), (date(2027, 2, 6), 61)]
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == 120
    ws = load_workbook(BytesIO(hours_roster_xlsx(w.session, 2027, as_of=date(2027, 2, 6)))).active
    row = next(r for r in ws.iter_rows(values_only=True) if r[0] == v.name)
    assert row[3] == 2.0 and row[6] == 2.0       # the export shows 2.0 h, not 1.9


def test_a_withdrawal_dated_in_the_future_still_lets_the_volunteer_scan_until_then(w):
    from services.volunteers import withdraw_volunteer

    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.p1, local(2027, 2, 10, 18), local(2027, 2, 10, 21))
    v = w.vols[0]
    withdraw_volunteer(w.session, v.id, date(2027, 2, 10), clock=fixed_clock(local(2027, 2, 1, 9)))
    assert w.scan(v, w.p1, local(2027, 2, 5, 18)).action == "check_in"   # before the date: still on the roster
    assert w.scan(v, w.p1, local(2027, 2, 5, 21)).attendance.credited_minutes == 180
    assert refused(lambda: w.scan(v, w.p1, local(2027, 2, 10, 18))) == "volunteer_withdrawn"
    from services.indicators import active_volunteer_ids
    assert v.id in active_volunteer_ids(w.session, date(2027, 2, 9))
    assert v.id not in active_volunteer_ids(w.session, date(2027, 2, 10))


def test_withdrawing_a_checked_in_volunteer_closes_the_patrol_at_that_moment(w):
    from services.volunteers import withdraw_volunteer

    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 23))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18))
    withdraw_volunteer(w.session, v.id, date(2027, 2, 5), clock=fixed_clock(local(2027, 2, 5, 20)))
    att = w.session.scalar(select(Attendance))
    w.session.refresh(att)
    assert (att.status, att.check_out_at, att.credited_minutes) == ("auto_closed", local(2027, 2, 5, 20), 120)
    assert att.review_status == "flagged" and "withdrawn" in att.flag_list
    assert close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 6, 9))) == []
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == 120   # never the shift end's 300


def test_a_patrol_left_open_when_a_dated_withdrawal_takes_effect_ends_at_that_midnight(w):
    from services.volunteers import withdraw_volunteer

    w.shift(w.p1, local(2027, 2, 9, 22), local(2027, 2, 10, 2))
    v = w.vols[0]
    withdraw_volunteer(w.session, v.id, date(2027, 2, 10), clock=fixed_clock(local(2027, 2, 1, 9)))
    w.scan(v, w.p1, local(2027, 2, 9, 22))
    assert close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 10, 2, 31))) != []
    att = w.session.scalar(select(Attendance))
    w.session.refresh(att)
    assert (att.check_out_at, att.credited_minutes) == (local(2027, 2, 10), 120)
    assert {"auto_closed", "withdrawn"} <= set(att.flag_list)


def test_hours_shown_to_a_volunteer_round_down(w):
    from services.hours import floor_hours

    assert [floor_hours(m) for m in (0, 5, 6, 177, 357, 359, 360, 365, 366)] == \
        [0.0, 0.0, 0.1, 2.9, 5.9, 5.9, 6.0, 6.0, 6.1]
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 23))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18))
    out = w.scan(v, w.p1, local(2027, 2, 5, 20, 57))
    assert out.attendance.credited_minutes == 177
    assert (out.attendance.credited_hours, out.year_hours) == (2.9, 2.9)
    summary = volunteer_hours(w.session, v.id, 2027)
    assert (summary.total_minutes, summary.total, summary.verified) == (177, 2.9, 2.9)


class _MidnightClock:
    """The first reading is just before Shanghai midnight, every later one just after: the scan's
    day is guessed before its locks are held and the time is read under them."""

    def __init__(self, before: datetime, after: datetime) -> None:
        self.readings = [before]
        self.after = after

    def __call__(self) -> datetime:
        return self.readings.pop(0) if self.readings else self.after


def test_a_scan_whose_locks_are_taken_across_midnight_judges_the_new_day(w):
    """The state query reads the day's shared-phone and insurance checks for the day guessed
    before the lock; when the time read under the lock is the next day, they are asked again for
    that day, so yesterday's sharer or yesterday's cover does not count today."""
    from decimal import Decimal

    from models import InsuranceCover
    from services.programme import create_policy

    w.shift(w.p1, local(2027, 2, 5, 12), local(2027, 2, 6, 2))
    policy = create_policy(w.session, insurer="保险公司", policy_no="P-1", cover_start=date(2027, 1, 1),
                           cover_end=date(2027, 2, 5), premium_per_person=Decimal("9"))
    w.session.add(InsuranceCover(policy_id=policy.id, volunteer_id=w.vols[1].id))
    w.session.commit()
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 20), device_id=7)   # 7 was vols[0]'s on the 5th
    clock = _MidnightClock(local(2027, 2, 5, 23, 59, 59), local(2027, 2, 6, 0, 0, 1))
    r = scan(w.session, w.vols[1].id, point_token(SIGNER, w.p1), signer=SIGNER, rules=ScanRules(), clock=clock,
             lat=P1[0], lon=P1[1], device_id=7)
    assert r.action == "check_in" and r.scanned_at == local(2027, 2, 6, 0, 0, 1)
    assert "shared_device" not in r.attendance.flags
    assert "uninsured" in r.attendance.flags        # covered until the 5th only


def test_the_same_day_reads_the_checks_from_the_state_query(w):
    """The common case: guessed and real day agree, and the shared phone and the lapse are seen."""
    from decimal import Decimal

    from services.programme import create_policy

    w.shift(w.p1, local(2027, 2, 5, 12), local(2027, 2, 6, 2))
    create_policy(w.session, insurer="保险公司", policy_no="P-1", cover_start=date(2027, 1, 1),
                  cover_end=date(2027, 12, 31), premium_per_person=Decimal("9"))
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 20), device_id=7)
    r = w.scan(w.vols[1], w.p1, local(2027, 2, 5, 21), device_id=7)
    assert set(r.attendance.flags) == {"shared_device", "uninsured"}


def test_the_last_check_out_names_where_the_patrol_ended_and_not_a_night_job_close(w):
    from services.checkin import close_forgotten, last_check_out

    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.p2, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    walker, forgetful = w.vols[0], w.vols[1]
    w.scan(walker, w.p1, local(2027, 2, 5, 18))
    w.scan(walker, w.p2, local(2027, 2, 5, 21, 5), ask_before_ending=False)
    last = last_check_out(w.session, walker.id, since=local(2027, 2, 5, 20))
    assert last.point_name == "二号点" and last.check_out_at == local(2027, 2, 5, 21, 5) and last.credited_hours == 3.0
    assert last_check_out(w.session, walker.id, since=local(2027, 2, 5, 22)) is None
    w.scan(forgetful, w.p1, local(2027, 2, 5, 18))
    close_forgotten(w.session, clock=fixed_clock(local(2027, 2, 6, 9)))
    assert last_check_out(w.session, forgetful.id, since=local(2027, 2, 5, 18)) is None
