"""One control character in an imported cell or a typed field must not take down every export
(openpyxl refuses to write it) nor, on PostgreSQL, the import itself (a NUL). Review item 6."""
from __future__ import annotations

import io
from datetime import date

from openpyxl import load_workbook
from sqlalchemy import select, update

from models import PatrolPoint, Volunteer
from services.imports import import_points, import_volunteers
from services.roster import export_roster
from services.spreadsheet import append_row, csv_bytes as export_csv, new_workbook, set_text, workbook_bytes
from services.text import strip_controls
from tests.factories import csv_bytes


def test_strip_controls_keeps_tabs_and_line_breaks():
    assert strip_controls("a\x00b\x01c\x1fd\x7fe\tf\ng\rh") == "abcde\tf\ng\rh"
    assert strip_controls(5) == 5 and strip_controls(None) is None


def test_an_imported_cell_with_control_characters_and_a_nul_is_cleaned(session, cipher):
    rows = [["姓名", "手机号", "所属居委"], ["张\x00三\x07", "13900000001", "塘口\x1b居委"]]
    report = import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher)
    assert report.ok, report.lines()
    vol = session.scalar(select(Volunteer))
    assert (vol.name, vol.team) == ("张三", "塘口居委")
    points = csv_bytes([["点位编号", "点位名称"], ["P\x0b1", "浦锦路\x00口"]])
    assert import_points(session, points, "p.csv").ok
    assert session.scalar(select(PatrolPoint.name)) == "浦锦路口"


def test_typed_text_loses_control_characters_before_it_is_stored(session):
    session.add(PatrolPoint(code="P9", name="三林\x08路", address="第一行\n第二行\x00"))
    session.commit()
    point = session.scalar(select(PatrolPoint))
    assert (point.name, point.address) == ("三林路", "第一行\n第二行")


def test_a_stored_control_character_no_longer_breaks_the_export(session, cipher):
    session.add(Volunteer(name="李四", phone="13900000002", joined_on=date(2026, 1, 1)))
    session.commit()
    # Written before the cleaning existed (bypassing the ORM): the export still works.
    session.execute(update(Volunteer.__table__).values(name="李\x01四", team="丰\x1f顺"))
    session.commit()
    result = export_roster(session, cipher=cipher, actor="test")
    ws = load_workbook(io.BytesIO(result.content)).active
    assert "李四" in [c for row in ws.iter_rows(values_only=True) for c in row]
    wb = new_workbook("t")
    append_row(wb.active, ["a\x02b", "=x\x03"])
    set_text(wb.active, 2, 1, "c\x04d")
    back = load_workbook(io.BytesIO(workbook_bytes(wb))).active
    assert [c.value for c in back[1]] == ["ab", "=x"] and back["A2"].value == "cd"
    assert export_csv([["e\x05f"]]).decode("utf-8-sig").strip() == "ef"
