"""Data-subject requests and retention (issue 10 item 3), and the action log (item 4)."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from models import (Attendance, AttendanceCredit, CoordinatorAction, Device, HourAdjustment, PatrolPoint,
                    PersonalDataExport, Volunteer)
from models.attendance import ScanRecord
from models.messaging import SurveyAnswer, SurveyRound
from services.errors import DomainError
from services.hours import volunteer_hours
from services.indicators import active_volunteer_ids, compute_indicators
from services.messaging import post_message
from services.outbox import Recipient
from services.pii import mask_id_number
from services.privacy import clear_old_scan_locations, erase_volunteer, subject_access_export
from services.volunteers import withdraw_volunteer
from tests.factories import id_number

IDN = id_number("31011219800101123")
NOW = datetime(2026, 6, 1, 4, tzinfo=timezone.utc)


def _person(session, cipher) -> int:
    vol = Volunteer(name="丁一", phone="13933330001", team="塘口居委", vest_no="PJ-0009", joined_on=date(2025, 1, 1),
                    id_number_enc=cipher.encrypt(IDN), id_number_hash=cipher.blind_index(IDN),
                    id_number_masked=mask_id_number(IDN))
    point = PatrolPoint(code="P1", name="一号点", lat=31.1, lon=121.5)
    session.add_all([vol, point])
    session.flush()
    start = datetime(2025, 3, 1, 2, tzinfo=timezone.utc)
    att = Attendance(volunteer_id=vol.id, point_id=point.id, status="closed", check_in_at=start,
                     check_out_at=start + timedelta(hours=3), credited_minutes=180, work_date=date(2025, 3, 1), flags="",
                     note="丁一说家里有事")
    session.add(att)
    session.flush()
    session.add(AttendanceCredit(attendance_id=att.id, volunteer_id=vol.id, work_date=date(2025, 3, 1), minutes=180))
    session.add(HourAdjustment(volunteer_id=vol.id, work_date=date(2025, 3, 2), minutes=60, reason="补登"))
    session.add(Device(volunteer_id=vol.id, token_hash="x" * 64, method="link", user_agent="Mozilla/5.0 Phone"))
    session.add(ScanRecord(volunteer_id=vol.id, point_id=point.id, attendance_id=att.id, scanned_at=start, action="check_in",
                           code="ok", lat=31.1001, lon=121.5001, accuracy_m=12.0, distance_m=15.0))
    rnd = SurveyRound(name="2025 满意度", question="满意吗？", opens_at=start)
    session.add(rnd)
    session.flush()
    session.add(SurveyAnswer(round_id=rnd.id, volunteer_id=vol.id, score=5, comment="我住在塘口路 8 号"))
    session.commit()
    post_message(session, kind="notice", title="通知", body="明天巡逻", recipients=[Recipient(volunteer_id=vol.id)],
                 dedupe_key="n1")
    return vol.id


def test_subject_access_export_holds_everything_and_is_logged(session, cipher):
    vid = _person(session, cipher)
    result = subject_access_export(session, vid, cipher=cipher, actor="user:1:admin", clock=lambda: NOW)
    session.commit()
    data = json.loads(result.content)
    assert data["profile"]["name"] == "丁一" and data["profile"]["id_number"] == IDN
    assert "id_number_enc" not in data["profile"] and "id_number_hash" not in data["profile"]
    assert data["devices"][0]["user_agent"] == "Mozilla/5.0 Phone" and "token_hash" not in data["devices"][0]
    assert data["scans"][0]["lat"] == 31.1001
    assert data["attendances"][0]["credited_minutes"] == 180
    assert data["messages"][0]["body"] == "明天巡逻"
    assert data["survey_answers"][0]["comment"] == "我住在塘口路 8 号"
    assert data["hour_adjustments"][0]["minutes"] == 60
    log = session.scalar(select(PersonalDataExport))
    assert (log.what, log.actor) == ("subject_access_export", "user:1:admin")
    action = session.scalar(select(CoordinatorAction))
    assert (action.action, action.target) == ("subject_export", f"volunteer:{vid}")


def test_erasure_needs_a_withdrawal_and_keeps_the_figures(session, cipher):
    vid = _person(session, cipher)
    with pytest.raises(DomainError) as exc:
        erase_volunteer(session, vid, actor="user:1:admin")
    assert exc.value.code == "not_withdrawn"
    withdraw_volunteer(session, vid, date(2025, 12, 31), by="user:1:admin")
    before_hours = volunteer_hours(session, vid, 2025)
    before_active = active_volunteer_ids(session, date(2025, 6, 30))
    before = compute_indicators(session, 2025, today=date(2026, 1, 15))

    erase_volunteer(session, vid, actor="user:1:admin", clock=lambda: NOW)
    session.expire_all()
    vol = session.get(Volunteer, vid)
    assert vol.name != "丁一" and vol.phone != "13933330001" and vol.vest_no is None
    assert vol.id_number_enc is None and vol.id_number_hash is None and vol.id_number_masked is None
    assert vol.erased_at is not None
    assert session.scalar(select(func.count(Device.id))) == 0
    scan = session.scalar(select(ScanRecord))
    assert (scan.lat, scan.lon, scan.accuracy_m, scan.code, scan.distance_m) == (None, None, None, "ok", 15.0)
    answer = session.scalar(select(SurveyAnswer))
    assert (answer.score, answer.comment) == (5, None)
    assert session.scalar(select(Attendance.note)) is None
    # Aggregate figures of the programme year do not move.
    assert volunteer_hours(session, vid, 2025) == before_hours
    assert active_volunteer_ids(session, date(2025, 6, 30)) == before_active
    after = compute_indicators(session, 2025, today=date(2026, 1, 15))
    assert [(r.number, r.actual, r.status) for r in after.rows] == [(r.number, r.actual, r.status) for r in before.rows]
    # Nothing of the person is left in the database dump of the volunteer's own rows.
    dump = subject_access_export(session, vid, cipher=cipher, actor="t").content.decode()
    for secret in ("丁一", "13933330001", IDN, "PJ-0009", "31.1001", "塘口路", "Mozilla"):
        assert secret not in dump
    # The action log survives, and records withdrawal and erasure.
    actions = [(a.action, a.target) for a in session.scalars(select(CoordinatorAction).order_by(CoordinatorAction.id))]
    assert ("withdraw", f"volunteer:{vid}") in actions and ("erase", f"volunteer:{vid}") in actions


def test_scan_locations_are_cleared_after_the_retention_period(session, cipher):
    _person(session, cipher)
    first = session.scalar(select(ScanRecord))
    session.add(ScanRecord(volunteer_id=first.volunteer_id, point_id=first.point_id, scanned_at=NOW - timedelta(days=10),
                           action="refused", code="outside_geofence", lat=31.2, lon=121.6, accuracy_m=30.0,
                           distance_m=900.0))
    session.commit()
    assert clear_old_scan_locations(session, now=NOW, retention_days=400) == 1
    rows = {s.code: (s.lat, s.lon, s.accuracy_m, s.distance_m) for s in session.scalars(select(ScanRecord))}
    assert rows == {"ok": (None, None, None, 15.0), "outside_geofence": (31.2, 121.6, 30.0, 900.0)}
    assert clear_old_scan_locations(session, now=NOW, retention_days=400) == 0  # idempotent
    assert clear_old_scan_locations(session, now=NOW + timedelta(days=400), retention_days=400) == 1
    assert session.scalar(select(func.count(ScanRecord.id))) == 2
    assert session.scalar(select(func.count(CoordinatorAction.id)).where(CoordinatorAction.action == "retention")) == 2


def test_the_scheduled_job_uses_the_retention_setting(app, session, cipher, monkeypatch):
    from scheduler import jobs
    from scheduler.runner import job_specs

    assert "scan_retention" in [name for name, _ref, _t in job_specs(app)]
    _person(session, cipher)
    jobs.use_app(app)
    monkeypatch.setitem(app.config, "CLOCK", lambda: NOW)
    monkeypatch.setitem(app.config, "SCAN_LOCATION_RETENTION_DAYS", 400)
    jobs.scan_retention()
    session.expire_all()
    assert session.scalar(select(ScanRecord.lat)) is None
    assert app.config["SCAN_LOCATION_RETENTION_DAYS"] == 400


def test_survey_comments_and_leave_notices_are_exported_and_erased(session, cipher):
    """Review item 7: appended survey comments (table survey_comments) were missing from the copy
    and survived erasure; leave notices naming the person stayed in coordinators' inboxes."""
    from models import Assignment, Event, Message, OutboxItem, Shift
    from models.messaging import SurveyComment
    from services.assignments import request_leave
    from services.users import create_user

    vid = _person(session, cipher)
    answer = session.scalar(select(SurveyAnswer))
    session.add(SurveyComment(answer_id=answer.id, text="队长电话 13800001111 常打不通", channel="telegram"))
    create_user(session, "coord", "password-123", "coordinator")
    event = Event(name="端午", starts_on=date(2026, 6, 1), ends_on=date(2026, 6, 30))
    point = session.scalar(select(PatrolPoint))
    session.add(event)
    session.flush()
    shift = Shift(event_id=event.id, point_id=point.id, starts_at=NOW + timedelta(days=2),
                  ends_at=NOW + timedelta(days=2, hours=3), capacity=5)
    session.add(shift)
    session.flush()
    session.add(Assignment(shift_id=shift.id, volunteer_id=vid))
    session.commit()
    request_leave(session, shift.id, vid, clock=lambda: NOW)

    data = json.loads(subject_access_export(session, vid, cipher=cipher, actor="t", clock=lambda: NOW).content)
    assert [c["text"] for c in data["survey_comments"]] == ["队长电话 13800001111 常打不通"]
    assert "丁一" in data["leave_messages_to_office"][0]["title"]

    withdraw_volunteer(session, vid, date(2026, 6, 1), by="user:1:admin")
    erase_volunteer(session, vid, actor="user:1:admin", clock=lambda: NOW)
    session.expire_all()
    assert session.scalar(select(func.count(SurveyComment.id))) == 0
    leave = session.scalar(select(Message).where(Message.kind == "leave"))
    assert "丁一" not in leave.title + leave.body and f"#{vid}" in leave.title
    assert all("丁一" not in p for p in session.scalars(select(OutboxItem.payload)))
    assert session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.message_id == leave.id,
                                                                    OutboxItem.status == "pending")) == 0
