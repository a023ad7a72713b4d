"""The night board (who is missing, counts, reminders) and the review rules of issue 12, with a
fixed clock: decisions before check-out, a new flag at check-out reopening them, bulk decisions,
and the evidence shown for a flagged record."""
from __future__ import annotations


import pytest
from sqlalchemy import func, select

from models import Assignment, Attendance, Message, OutboxItem, User
from models.event import ASSIGNMENT_DECLINED
from services.board import night_window, remind, tonight, today
from services.clock import fixed_clock
from services.coords import wgs84_to_gcj02
from services.errors import DomainError
from services.evidence import amap_marker_url, record_evidence
from services.hours import volunteer_hours
from services.review import review_attendance, review_many, review_queue
from tests.services.test_checkin import P1, World, local


@pytest.fixture
def w(session):
    world = World(session)
    world.user = User(username="coord", password_hash="x", role="coordinator")
    session.add(world.user)
    session.commit()
    return world


def _night(w):
    """One shift 18:00–21:00 at P1: vols 0–3 assigned (3 declined), 0 in, 1 in and out, 2 missing;
    vol 4 walks in; a second shift at P2 the same evening has vol 5, not yet late."""
    s1 = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    s2 = w.shift(w.p2, local(2027, 2, 5, 19), local(2027, 2, 5, 22))
    for v in w.vols[:4]:
        w.assign(s1, v)
    w.session.execute(Assignment.__table__.update().where(Assignment.volunteer_id == w.vols[3].id)
                      .values(status=ASSIGNMENT_DECLINED))
    w.assign(s2, w.vols[5])
    w.session.commit()
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 17, 55))
    w.scan(w.vols[1], w.p1, local(2027, 2, 5, 18, 0))
    w.scan(w.vols[1], w.p1, local(2027, 2, 5, 18, 10), ask_before_ending=False)
    w.scan(w.vols[4], w.p1, local(2027, 2, 5, 18, 5))
    return s1, s2


def test_missing_only_after_start_plus_grace(w):
    s1, s2 = _night(w)
    early = tonight(w.session, clock=fixed_clock(local(2027, 2, 5, 18, 14)), grace_minutes=15)
    row = early.campaigns[0].slots[0].points[0]
    assert row.shift_id == s1.id and not row.started and row.missing == [] and early.totals.missing == 0
    board = tonight(w.session, clock=fixed_clock(local(2027, 2, 5, 18, 15)), grace_minutes=15)
    row = board.campaigns[0].slots[0].points[0]
    assert row.started
    assert [m.name for m in row.missing] == ["志愿者2"]
    assert row.expected == 3                       # the declined one is not expected
    assert (row.present_count, row.done_count, row.missing_count, row.walk_in_count) == (1, 1, 1, 1)
    assert [p.name for p in row.walk_ins] == ["志愿者4"]   # apart, not counted as present
    assert row.missing[0].phone == "13900000002"
    other = board.campaigns[0].slots[1].points[0]
    assert other.shift_id == s2.id and not other.started and other.missing == []
    assert (board.totals.expected, board.totals.present, board.totals.done, board.totals.missing,
            board.totals.walk_ins) == (4, 1, 1, 1, 1)
    later = tonight(w.session, clock=fixed_clock(local(2027, 2, 5, 19, 30)), grace_minutes=15)
    assert [m.name for _row, m in later.missing_people] == ["志愿者2", "志愿者5"]


def test_the_night_runs_until_six_in_the_morning(w):
    _night(w)
    start, end = night_window(local(2027, 2, 6, 2, 0))
    assert (start, end) == (local(2027, 2, 5, 0, 0), local(2027, 2, 6, 6, 0))
    assert tonight(w.session, clock=fixed_clock(local(2027, 2, 6, 2, 0))).totals.shifts == 2
    assert tonight(w.session, clock=fixed_clock(local(2027, 2, 6, 7, 0))).totals.shifts == 0


def test_remind_sends_once_per_person_and_shift(w):
    s1, _s2 = _night(w)
    at = fixed_clock(local(2027, 2, 5, 18, 20))
    first = remind(w.session, s1.id, w.vols[2].id, by_user_id=w.user.id, clock=at)
    again = remind(w.session, s1.id, w.vols[2].id, by_user_id=w.user.id, clock=at)
    assert first.created and not again.created and first.message_id == again.message_id
    assert w.session.scalar(select(func.count(Message.id))) == 1
    assert w.session.scalar(select(func.count(OutboxItem.id))) == 1
    assert "18:00" in w.session.scalar(select(Message.body))
    board = tonight(w.session, clock=at)
    assert board.missing_people[0][1].reminded_at is not None
    with pytest.raises(DomainError) as exc:
        remind(w.session, s1.id, w.vols[4].id, by_user_id=w.user.id, clock=at)  # a walk-in, not on the list
    assert exc.value.code == "not_assigned"


def test_today_counts(w):
    _night(w)
    day = today(w.session, clock=fixed_clock(local(2027, 2, 5, 18, 20)))
    assert day.on_patrol == 2 and day.board.totals.missing == 1 and day.failed_messages == 0
    assert day.waiting_review == w.session.scalar(select(func.count(Attendance.id))
                                                  .where(Attendance.review_status == "flagged"))


def test_decided_before_check_out_and_kept_when_nothing_new(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18), where=(P1[0] + 0.01, P1[1]))  # ~1.1 km away
    att = w.session.scalar(select(Attendance))
    assert att.status == "open" and att.review_status == "flagged"
    review_attendance(w.session, att.id, "approved", by_user_id=w.user.id, reason="电话核实",
                      clock=fixed_clock(local(2027, 2, 5, 18, 30)))
    w.scan(v, w.p1, local(2027, 2, 5, 21))  # at the point: nothing new to doubt
    w.session.expire_all()
    att = w.session.get(Attendance, att.id)
    assert att.status == "closed" and att.review_status == "approved" and att.credited_minutes == 180


def test_a_new_flag_at_check_out_reopens_the_review(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18), where=(P1[0] + 0.01, P1[1]))
    att_id = w.session.scalar(select(Attendance.id))
    review_attendance(w.session, att_id, "approved", by_user_id=w.user.id)
    from services.checkin import scan
    from services.qr import point_token
    from tests.services.test_checkin import SIGNER
    scan(w.session, v.id, point_token(SIGNER, w.p1), signer=SIGNER, clock=fixed_clock(local(2027, 2, 5, 21)))
    w.session.expire_all()
    att = w.session.get(Attendance, att_id)
    assert "no_location" in att.flag_list and att.review_status == "flagged"


def test_a_rejection_needs_a_reason(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), where=(P1[0] + 0.01, P1[1]))
    att_id = w.session.scalar(select(Attendance.id))
    with pytest.raises(DomainError) as exc:
        review_attendance(w.session, att_id, "rejected", by_user_id=w.user.id, reason=" ")
    assert exc.value.code == "reason_required"
    assert w.session.get(Attendance, att_id).review_status == "flagged"


def test_bulk_approval_goes_through_the_daily_cap_and_skips_decided_records(w):
    rules_cap = 4 * 60
    from services.checkin import ScanRules
    rules = ScanRules(daily_cap_minutes=rules_cap)
    w.shift(w.p1, local(2027, 2, 5, 10), local(2027, 2, 5, 13))
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v, u = w.vols[0], w.vols[1]
    far = (P1[0] + 0.01, P1[1])
    for at_in, at_out in (((10, 0), (13, 0)), ((18, 0), (21, 0))):
        w.scan(v, w.p1, local(2027, 2, 5, *at_in), where=far, rules=rules)
        w.scan(v, w.p1, local(2027, 2, 5, *at_out), where=far, rules=rules)
    w.scan(u, w.p1, local(2027, 2, 5, 18, 0), where=far, rules=rules)
    queue = review_queue(w.session, flag="outside_geofence")
    assert len(queue) == 3
    ids = [r.id for r in queue]
    review_attendance(w.session, ids[2], "rejected", by_user_id=w.user.id, reason="不在岗", rules=rules)
    done = review_many(w.session, ids, "approved", by_user_id=w.user.id, rules=rules,
                       clock=fixed_clock(local(2027, 2, 6, 9)))
    assert (done.decided, done.skipped) == (2, 1)
    statuses = dict(w.session.execute(select(Attendance.id, Attendance.review_status)).all())
    assert statuses[ids[2]] == "rejected"
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == rules_cap  # 3 h + 3 h capped at 4 h
    assert review_queue(w.session) == []
    with pytest.raises(DomainError):
        review_many(w.session, [], "approved", by_user_id=w.user.id)


def test_evidence_in_words_numbers_and_a_sketch(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.p1.radius_m = 100
    w.session.commit()
    north = P1[0] + 160 / 111_195  # 160 m north
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), where=(north, P1[1]), accuracy=30)
    att_id = w.session.scalar(select(Attendance.id))
    ev = record_evidence(w.session, att_id)
    assert any("距点位 160 米，定位精度 30 米" in line for line in ev.reasons), ev.reasons
    sketch = ev.scans[0].sketch
    assert sketch.scan_y < 0 and abs(sketch.scan_x) < 1   # north is up
    assert sketch.accuracy_r < sketch.fence_r < abs(sketch.scan_y) <= sketch.size / 2
    glat, glon = wgs84_to_gcj02(*P1)
    assert ev.amap_url == amap_marker_url(*P1, "P1 一号点")
    assert f"position={glon:.6f}%2C{glat:.6f}" in ev.amap_url and ev.amap_url.startswith("https://uri.amap.com/marker?")


def test_evidence_names_the_other_volunteer_on_a_shared_phone_and_the_speed(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.far, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    a, b = w.vols[0], w.vols[1]
    w.scan(a, w.p1, local(2027, 2, 5, 18, 0), device_id=77)
    w.scan(b, w.p1, local(2027, 2, 5, 18, 2), device_id=77)
    w.scan(b, w.far, local(2027, 2, 5, 18, 12), device_id=99, ask_before_ending=False)
    b_att = w.session.scalar(select(Attendance.id).where(Attendance.volunteer_id == b.id))
    lines = record_evidence(w.session, b_att).reasons
    assert any("志愿者0" in line and "18:00" in line for line in lines), lines
    assert any("10 分钟内" in line and "公里/小时" in line for line in lines), lines
