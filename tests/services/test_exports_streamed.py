"""The hours and attendance exports stream (write-only workbook, rows in batches) and give the same
numbers as the per-volunteer service."""
from __future__ import annotations

from datetime import date
from io import BytesIO

from openpyxl import load_workbook
from sqlalchemy import func, select

from models import Attendance, Volunteer
from services.exports import attendance_xlsx
from services.hours import hours_by_volunteer, volunteer_hours
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)


def test_everyones_hours_at_once_match_one_by_one(session, programme):  # noqa: F811
    bulk = hours_by_volunteer(session, Y)
    ids = session.scalars(select(Volunteer.id)).all()
    assert bulk, "the programme has credited time"
    for vid in ids:
        one = volunteer_hours(session, vid, Y)
        got = bulk.get(vid)
        if got is None:
            assert one.total_minutes == 0
        else:
            assert (got.verified_minutes, got.imported_minutes, got.adjusted_minutes) == (
                one.verified_minutes, one.imported_minutes, one.adjusted_minutes)


def test_attendance_export_has_every_patrol_of_the_year(session, programme):  # noqa: F811
    wb = load_workbook(BytesIO(attendance_xlsx(session, Y)), read_only=True)
    sheet = wb["签到记录"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    in_year = session.scalar(select(func.count(Attendance.id))
                             .where(Attendance.work_date.between(date(Y, 1, 1), date(Y, 12, 31))))
    assert len(rows) == in_year and in_year > 0
    assert all(r[0] and r[4] for r in rows)  # a name and a check-in time on every line
    assert "人工调整" in wb.sheetnames
    wb.close()


def test_streamed_roster_keeps_phones_and_id_numbers_as_text(session, cipher):
    from services.imports import import_volunteers
    from services.roster import export_roster
    from tests.factories import roster_rows, xlsx_bytes

    import_volunteers(session, xlsx_bytes(roster_rows(5, with_ids=True), text_columns=[4]), "r.xlsx", cipher=cipher)
    out = export_roster(session, cipher=cipher, actor="test")
    ws = load_workbook(BytesIO(out.content)).active
    assert out.rows == 5 and ws.max_row == 6
    for row in ws.iter_rows(min_row=2):
        assert row[1].number_format == "@" and isinstance(row[1].value, str) and len(row[1].value) == 11
        assert row[4].number_format == "@" and "*" in row[4].value


def test_the_roster_export_names_a_withdrawal_dated_ahead_as_still_on_the_roster(session, cipher):
    """A volunteer leaving next week still patrols until then: the roster says so, with the day."""
    from datetime import date

    from models import Volunteer
    from services.roster import export_roster

    session.add_all([Volunteer(name="在册", phone="13900000001", joined_on=date(2026, 1, 1)),
                     Volunteer(name="将退出", phone="13900000002", joined_on=date(2026, 1, 1), status="withdrawn",
                               withdrawn_on=date(2026, 12, 10)),
                     Volunteer(name="已退出", phone="13900000003", joined_on=date(2026, 1, 1), status="withdrawn",
                               withdrawn_on=date(2026, 11, 1))])
    session.commit()
    out = export_roster(session, cipher=cipher, actor="test", today=date(2026, 11, 29))
    ws = load_workbook(BytesIO(out.content)).active
    status = {row[0].value: row[6].value for row in ws.iter_rows(min_row=2)}
    assert status == {"在册": "在册", "将退出": "在册（2026-12-10 起退出）", "已退出": "已退出"}
