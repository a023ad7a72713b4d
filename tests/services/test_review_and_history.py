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
    # (a record may now be decided before check-out: tests/services/test_board_and_review.py)
    scan(w.session, v.id, point_token(SIGNER, w.p1), signer=SIGNER, clock=fixed_clock(local(2027, 2, 5, 20)))
    att = w.session.scalar(select(Attendance))
    assert att.review_status == "flagged" and "no_location" in att.flag_list
    assert volunteer_hours(w.session, v.id, 2027).verified_minutes == 120  # provisional until reviewed
    review_attendance(w.session, att.id, "rejected", reason="不在岗", by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 6, 9)))
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


# --- issue 9: rule corrections -------------------------------------------------------------------

def _long_day(w):
    """06:00–14:00 at P1 then 14:00–22:00 at P2: 16 h of shifts on one Shanghai day."""
    w.shift(w.p1, local(2027, 2, 5, 6), local(2027, 2, 5, 14))
    w.shift(w.p2, local(2027, 2, 5, 14), local(2027, 2, 5, 22))
    v = w.vols[0]
    w.scan(v, w.p1, local(2027, 2, 5, 6))
    first = w.scan(v, w.p1, local(2027, 2, 5, 14)).attendance
    w.scan(v, w.p2, local(2027, 2, 5, 14, 1))
    return v, first


def _day_minutes(w, v) -> int:
    from models import AttendanceCredit
    return w.session.scalar(select(func.sum(AttendanceCredit.minutes)).join(Attendance)
                            .where(AttendanceCredit.volunteer_id == v.id, AttendanceCredit.work_date == date(2027, 2, 5),
                                   Attendance.review_status != "rejected")) or 0


def test_daily_cap_holds_when_a_rejected_record_is_approved_later(w):
    v, first = _long_day(w)
    at = fixed_clock(local(2027, 2, 6, 9))
    review_attendance(w.session, first.id, "rejected", reason="不在岗", by_user_id=w.user.id, clock=at)
    second = w.scan(v, w.p2, local(2027, 2, 5, 22)).attendance
    assert second.credited_minutes == 479 and "daily_cap" not in second.flags   # the first credits nothing
    # a hand adjustment is a deliberate entry: it does not count toward the cap
    add_adjustment(w.session, v.id, minutes=600, work_date=date(2027, 2, 5), reason="补录", by_user_id=w.user.id)
    review_attendance(w.session, first.id, "approved", by_user_id=w.user.id, clock=at)
    rows = {a.id: a for a in w.session.scalars(select(Attendance)).all()}
    for a in rows.values():
        w.session.refresh(a)
    assert rows[first.id].credited_minutes == 480                  # earlier in check-in order: keeps its minutes
    assert rows[second.id].credited_minutes == 240                 # later: cut to what the cap leaves
    assert "daily_cap" in rows[second.id].flag_list and rows[second.id].review_status == "flagged"
    assert _day_minutes(w, v) == 720
    summary = volunteer_hours(w.session, v.id, 2027)
    assert (summary.verified_minutes, summary.adjusted_minutes) == (720, 600)


def test_a_rejection_gives_its_minutes_back_to_the_records_after_it(w, client, auth):
    v, first = _long_day(w)
    second = w.scan(v, w.p2, local(2027, 2, 5, 22)).attendance
    assert (second.credited_minutes, second.flags) == (240, ("daily_cap",))
    review_attendance(w.session, first.id, "rejected", reason="不在岗", by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 6, 9)))
    att = w.session.get(Attendance, second.id)
    w.session.refresh(att)
    assert (att.credited_minutes, att.flag_list, att.review_status) == (479, [], "none")
    assert _day_minutes(w, v) == 479
    assert w.session.get(Attendance, first.id).credited_minutes == 0
    # the coordinator's page of the volunteer shows the same total
    auth.login("boss", role="admin")
    page = client.get(f"/coord/volunteers/{v.id}?year=2027").get_data(as_text=True)
    assert "<strong>7.9</strong>" in page


def test_daily_cap_keeps_check_in_order_for_imported_records_too(w):
    w.shift(w.p1, local(2026, 2, 16, 6), local(2026, 2, 16, 22))
    v = w.vols[0]
    late = [["手机号", "点位编号", "签到时间", "签退时间"], [v.phone, "P1", "2026-02-16 14:00", "2026-02-16 22:00"]]
    assert import_attendance(w.session, csv_bytes(late), "late.csv").ok
    early = [["手机号", "点位编号", "签到时间", "签退时间"], [v.phone, "P1", "2026-02-16 06:00", "2026-02-16 14:00"]]
    assert import_attendance(w.session, csv_bytes(early), "early.csv").ok
    minutes = dict(w.session.execute(select(Attendance.check_in_at, Attendance.credited_minutes)).all())
    assert minutes == {local(2026, 2, 16, 6): 480, local(2026, 2, 16, 14): 240}


def test_re_importing_a_sheet_keeps_a_rejected_row_rejected(w, runner, tmp_path):
    rows = [["手机号", "活动", "签到时间", "签退时间"],
            [w.vols[0].phone, "2025年国庆巡逻", "2025-10-01 09:00", "2025-10-01 12:00"],
            [w.vols[1].phone, "2025年国庆巡逻", "2025-10-01 09:00", "2025-10-01 11:00"]]
    assert import_attendance(w.session, csv_bytes(rows), "paper.csv").created == 2
    bad = w.session.scalar(select(Attendance.id).where(Attendance.volunteer_id == w.vols[0].id))
    review_attendance(w.session, bad, "rejected", reason="不在岗", by_user_id=w.user.id, clock=fixed_clock(local(2025, 10, 8, 9)))
    rows.append([w.vols[2].phone, "2025年国庆巡逻", "2025-10-01 09:00", "2025-10-01 10:00"])
    again = import_attendance(w.session, csv_bytes(rows), "paper.csv")
    assert again.ok and (again.created, again.unchanged) == (1, 2)
    assert [(n.row, n.code) for n in again.notices] == [(2, "already_rejected")]
    assert "已审核：不通过" in again.notice_lines()[0]
    assert w.session.scalar(select(func.count(Attendance.id)).where(Attendance.volunteer_id == w.vols[0].id)) == 1
    assert volunteer_hours(w.session, w.vols[0].id, 2025).imported_minutes == 0
    # the command line says so too, and exits 0
    path = tmp_path / "paper.csv"
    path.write_bytes(csv_bytes(rows))
    result = runner.invoke(args=["import", "attendance", str(path)])
    assert result.exit_code == 0, result.output
    assert "未变 3" in result.output and "第 2 行" in result.output and "已审核：不通过" in result.output


def test_paper_credit_is_limited_to_the_shift_it_overlaps(w):
    from models import Event
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 23))
    w.shift(w.p2, local(2027, 2, 5, 9), local(2027, 2, 5, 11))
    other = Event(name="元宵", starts_on=date(2027, 2, 11), ends_on=date(2027, 2, 11))
    w.session.add(other)
    w.session.commit()
    lantern = w.shift(w.far, local(2027, 2, 11, 18), local(2027, 2, 11, 21), event=other)
    header = ["手机号", "点位编号", "活动", "签到时间", "签退时间", "计划外"]
    v = w.vols
    rows = [header,
            [v[0].phone, "P1", None, "2027-02-05 17:20", "2027-02-05 23:10", None],   # before the scan window
            [v[1].phone, "P2", None, "2027-02-05 13:00", "2027-02-05 15:00", None],   # misses the day's shift
            [v[2].phone, "P3", None, "2027-02-06 09:00", "2027-02-06 10:30", None],   # no shift that day
            [v[3].phone, None, "元宵", "2027-02-11 17:00", "2027-02-11 20:00", None]]  # the campaign's shift
    bad = import_attendance(w.session, csv_bytes(rows), "paper.csv")
    assert [(e.row, e.code) for e in bad.errors] == [(3, "outside_shifts")]
    rows[2][5] = "是"
    report = import_attendance(w.session, csv_bytes(rows), "paper.csv")
    assert report.ok and report.created == 4, report.lines()
    got = {a.volunteer_id: a for a in w.session.scalars(select(Attendance)).all()}
    first = got[v[0].id]
    assert (first.shift_id, first.credited_minutes, first.flag_list) == (1, 300, [])   # 18:00–23:00 only
    assert (got[v[1].id].shift_id, got[v[1].id].credited_minutes, got[v[1].id].flag_list) == (None, 120, ["unscheduled"])
    assert (got[v[2].id].shift_id, got[v[2].id].credited_minutes) == (None, 90)
    assert got[v[2].id].review_status == "flagged" and got[v[2].id].flag_list == ["unscheduled"]
    assert (got[v[3].id].shift_id, got[v[3].id].credited_minutes) == (lantern.id, 120)
    assert volunteer_hours(w.session, v[0].id, 2027).imported_minutes == 300
    english = [["phone", "point", "checkin", "checkout", "unscheduled"],
               [v[4].phone, "P2", "2027-02-05 16:00", "2027-02-05 17:00", "yes"],
               [v[5].phone, "P2", "2027-02-05 16:00", "2027-02-05 17:00", "maybe"]]
    mixed = import_attendance(w.session, csv_bytes(english), "paper.csv")
    assert [(e.row, e.code) for e in mixed.errors] == [(3, "bad_yes_no")]
    english.pop()
    assert import_attendance(w.session, csv_bytes(english), "paper.csv").created == 1


def test_a_team_leaders_proxy_records_go_to_review_even_after_an_approval(w):
    """A leader reaches every team on the board: what a leader credits, a coordinator settles."""
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    v = w.vols[0]
    att = proxy_check_in(w.session, v.id, w.p1.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 18)),
                         by_leader=True)
    row = w.session.get(Attendance, att.id)
    assert row.review_status == "flagged" and "proxy_by_leader" in row.flag_list
    review_attendance(w.session, att.id, "approved", by_user_id=w.user.id)   # approved while still open
    proxy_check_out(w.session, att.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 20)), by_leader=True)
    w.session.expire_all()
    row = w.session.get(Attendance, att.id)
    assert row.status == "closed" and row.review_status == "flagged"   # the end time is the leader's: asked again
    # A coordinator's own proxy record is not flagged.
    other = proxy_check_in(w.session, w.vols[1].id, w.p1.id, by_user_id=w.user.id, clock=fixed_clock(local(2027, 2, 5, 18)))
    assert w.session.get(Attendance, other.id).review_status == "none"
