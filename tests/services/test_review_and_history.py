"""Review, adjustments, check-in on a volunteer's behalf, and imported paper records."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from models import Attendance, HourAdjustment, User
from services.checkin import close_forgotten, proxy_check_in, proxy_check_out, scan
from services.clock import fixed_clock
from services.errors import DomainError
from services.hours import volunteer_hours
from services.imports import import_attendance
from services.qr import point_token
from services.review import add_adjustment, list_attendances, on_patrol, review_attendance
from services.sheets import sheet_pdf, sheet_xlsx, shift_sheet
from tests.factories import csv_bytes
from tests.services.test_checkin import SIGNER, World, local


@pytest.fixture
def w(session):
    world = World(session)
    world.user = User(username="coord", password_hash="x", role="coordinator")
    session.add(world.user)
    session.commit()
    return world


def test_review_approve_and_reject(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 18), where=None)
    with pytest.raises(DomainError) as exc:
        review_attendance(w.session, 1, "approved", by_user_id=w.user.id)
    assert exc.value.code == "still_open"
    scan(w.session, v.id, point_token(SIGNER, w.p1), signer=SIGNER, clock=fixed_clock(local(2027, 2, 5, 20)))
    att = w.session.scalar(select(Attendance))
    assert att.review_status == "flagged" and "no_location" in att.flag_list
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == 120  # provisional until reviewed
    review_attendance(w.session, att.id, "rejected", by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 6, 9)))
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == 0
    review_attendance(w.session, att.id, "approved", by_user_id=w.user.id)
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == 120
    with pytest.raises(DomainError):
        review_attendance(w.session, att.id, "maybe", by_user_id=w.user.id)
    assert [r.review_status for r in list_attendances(w.session, review="approved").rows] == ["approved"]


def test_adjustment_needs_a_reason_and_is_kept_apart(w):
    v = w.vols[0]
    with pytest.raises(DomainError) as exc:
        add_adjustment(w.session, v.id, minutes=60, work_date=date(2027, 2, 5), reason=" ", by_user_id=w.user.id)
    assert exc.value.code == "reason_required"
    with pytest.raises(DomainError):
        add_adjustment(w.session, v.id, minutes=0, work_date=date(2027, 2, 5), reason="x" * 3, by_user_id=w.user.id)
    add_adjustment(w.session, v.id, minutes=90, work_date=date(2027, 2, 5), reason="停电当晚纸质记录",
                   by_user_id=w.user.id)
    add_adjustment(w.session, v.id, minutes=-30, work_date=date(2027, 2, 6), reason="重复登记更正", by_user_id=w.user.id)
    summary = volunteer_hours(w.session, v.id, 2027)
    assert (summary.verified_minutes, summary.imported_minutes, summary.adjusted_minutes) == (0, 0, 60)
    assert w.session.scalar(select(func.count(HourAdjustment.id))) == 2


def test_proxy_check_in_and_out_are_recorded_as_such(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    att = proxy_check_in(w.session, v.id, w.p1.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 18)))
    assert att.source == "proxy" and att.status == "open"
    assert [r.name for r in on_patrol(w.session)] == [v.name]
    with pytest.raises(DomainError) as exc:
        proxy_check_in(w.session, v.id, w.p1.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 18, 5)))
    assert exc.value.code == "already_checked_in"
    out = proxy_check_out(w.session, att.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 20)))
    assert out.credited_minutes == 120
    row = w.session.get(Attendance, att.id)
    assert row.recorded_by_user_id == w.user.id
    assert volunteer_hours(w.session, v.id, 2027).adjusted_minutes == 120  # not "scan-verified"
    with pytest.raises(DomainError):
        proxy_check_out(w.session, att.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 20, 5)))
    with pytest.raises(DomainError) as exc:
        proxy_check_in(w.session, v.id, w.p2.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 20)))
    assert exc.value.code == "no_active_shift"


def test_history_import_credits_overlap_with_the_shift_and_is_all_or_nothing(w):
    w.shift(w.p1, local(2026, 2, 16, 18), local(2026, 2, 16, 23))
    rows = [["手机号", "点位编号", "活动", "签到时间", "签退时间", "备注"],
            [w.vols[0].phone, "P1", None, "2026-02-16 17:45", "2026-02-16 23:10", "纸质表"],
            [w.vols[1].phone, None, "2025年国庆巡逻", "2025-10-01 09:00", "2025-10-01 12:30", None],
            [w.vols[2].phone, "P1", None, None, None, None],          # absent: skipped
            ["13912345678", "P1", None, "2026-02-16 18:00", "2026-02-16 20:00", None]]
    bad = import_attendance(w.session, csv_bytes(rows), "paper.csv")
    assert [(e.row, e.code) for e in bad.errors] == [(5, "unknown_volunteer")]
    assert w.session.scalar(select(func.count(Attendance.id))) == 0
    rows.pop()
    report = import_attendance(w.session, csv_bytes(rows), "paper.csv")
    assert report.ok and (report.created, report.skipped) == (2, 1)
    assert volunteer_hours(w.session, w.vols[0].id, 2026).imported_minutes == 300  # 18:00–23:00 of the shift
    assert volunteer_hours(w.session, w.vols[1].id, 2025).imported_minutes == 210
    again = import_attendance(w.session, csv_bytes(rows), "paper.csv")
    assert again.ok and (again.created, again.unchanged) == (0, 2)
    overlap = [rows[0], [w.vols[0].phone, "P1", None, "2026-02-16 20:00", "2026-02-16 22:00", None]]
    clash = import_attendance(w.session, csv_bytes(overlap), "paper.csv")
    assert [e.code for e in clash.errors] == ["overlap"]


def test_sign_in_sheet_xlsx_round_trips_through_the_import(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.assign(shift, w.vols[1])
    sheet = shift_sheet(w.session, shift.id)
    assert [ln.name for ln in sheet.lines] == [w.vols[0].name, w.vols[1].name]
    assert sheet_pdf(sheet)[:4] == b"%PDF"
    from io import BytesIO

    from openpyxl import load_workbook
    wb = load_workbook(BytesIO(sheet_xlsx(sheet)))
    ws = wb.active
    ws["F2"], ws["G2"] = "2027-02-05 18:05", "2027-02-05 20:35"   # the typed-in times of row 2
    out = BytesIO()
    wb.save(out)
    report = import_attendance(w.session, out.getvalue(), "sheet.xlsx")
    assert report.ok, report.lines()
    assert report.created == 1 and report.skipped >= 1
    att = w.session.scalar(select(Attendance))
    assert (att.source, att.shift_id, att.credited_minutes) == ("import", shift.id, 150)


def test_close_forgotten_cli(runner, w):
    w.shift(w.p1, local(2020, 2, 5, 18), local(2020, 2, 5, 21))
    w.scan(w.vols[0], w.p1, local(2020, 2, 5, 18))
    result = runner.invoke(args=["attendance", "close-forgotten"])
    assert result.exit_code == 0 and "1 条" in result.output
    assert close_forgotten(w.session, clock=fixed_clock(datetime.now().astimezone())) == []
