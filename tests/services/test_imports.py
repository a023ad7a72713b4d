"""The all-or-nothing spreadsheet imports."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select, text

from models import Event, PatrolPoint, Shift, Volunteer
from services.coords import distance_m
from services.imports import import_points, import_shifts, import_volunteers
from tests.conftest import utc
from tests.factories import csv_bytes, id_number, roster_rows, xlsx_bytes


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_500_row_roster_with_one_bad_phone_on_row_317_imports_nothing(session, cipher):
    rows = roster_rows(500)
    rows[316][1] = "1380013"  # list index 316 = spreadsheet row 317 (header is row 1)
    report = import_volunteers(session, xlsx_bytes(rows), "roster.xlsx", cipher=cipher)
    assert not report.ok
    assert [e.row for e in report.errors] == [317]
    assert report.errors[0].code == "phone_invalid"
    assert count(session, Volunteer) == 0

    rows[316][1] = "13900000316"
    fixed = import_volunteers(session, xlsx_bytes(rows), "roster.xlsx", cipher=cipher)
    assert fixed.ok, fixed.lines()
    assert (fixed.created, fixed.updated) == (500, 0)
    assert count(session, Volunteer) == 500

    rows[10][2] = "浦锦苑居委"
    again = import_volunteers(session, xlsx_bytes(rows), "roster.xlsx", cipher=cipher)
    assert (again.created, again.updated, again.unchanged) == (0, 1, 499)
    assert count(session, Volunteer) == 500
    assert session.scalar(select(Volunteer.team).where(Volunteer.phone == rows[10][1])) == "浦锦苑居委"


def test_every_bad_row_is_reported(session, cipher):
    rows = roster_rows(6)
    rows[2][1] = "abc"
    rows[4][0] = None
    rows[5][1] = rows[1][1]  # duplicate of row 2
    report = import_volunteers(session, xlsx_bytes(rows), "r.xlsx", cipher=cipher)
    assert sorted((e.row, e.code) for e in report.errors) == [
        (3, "phone_invalid"), (5, "required"), (6, "duplicate_in_file")]
    assert any("第 3 行" in line for line in report.lines())
    assert count(session, Volunteer) == 0


def test_gb18030_csv_with_chinese_headers_imports_the_same_names(session, cipher):
    rows = roster_rows(20)
    report = import_volunteers(session, csv_bytes(rows, "gb18030"), "名单.csv", cipher=cipher)
    assert report.ok, report.lines()
    names = set(session.scalars(select(Volunteer.name)))
    assert names == {r[0] for r in rows[1:]}
    assert session.scalar(select(Volunteer.team).where(Volunteer.phone == rows[1][1])) == "塘口居委"


def test_utf8_bom_csv_and_english_headers(session, cipher):
    rows = [["name", "phone", "team", "vest_no"], ["张三", "+86 139 0000 0001", "塘口居委", 12]]
    report = import_volunteers(session, csv_bytes(rows, "utf-8-sig"), "r.csv", cipher=cipher)
    assert report.ok, report.lines()
    vol = session.scalar(select(Volunteer))
    assert (vol.name, vol.phone, vol.vest_no) == ("张三", "13900000001", "12")


def test_excel_float_phone_and_scientific_id_number(session, cipher):
    rows = [["姓名", "手机号", "身份证号"], ["李四", 13900000002.0, 3.10112198001011e17],
            ["王五", 13900000003, "3.10112E+17"]]
    report = import_volunteers(session, xlsx_bytes(rows), "r.xlsx", cipher=cipher)
    assert {(e.row, e.code) for e in report.errors} == {(2, "id_number_numeric"), (3, "id_number_scientific")}


def test_blank_cell_never_erases_and_missing_volunteer_is_never_withdrawn(session, cipher):
    rows = roster_rows(3)
    assert import_volunteers(session, xlsx_bytes(rows), "r.xlsx", cipher=cipher).ok
    partial = [rows[0], [rows[1][0], rows[1][1], None, None]]
    report = import_volunteers(session, xlsx_bytes(partial), "r.xlsx", cipher=cipher)
    assert report.ok and report.unchanged == 1
    first = session.scalar(select(Volunteer).where(Volunteer.phone == rows[1][1]))
    assert (first.team, first.vest_no) == (rows[1][2], rows[1][3])
    assert session.scalar(select(func.count()).select_from(Volunteer).where(Volunteer.status == "active")) == 3


def test_id_numbers_are_encrypted_and_masked(app, session, cipher):
    idn = id_number("31011219800101123")
    rows = [["姓名", "手机号", "身份证号"], ["赵六", "13900000009", idn]]
    assert import_volunteers(session, xlsx_bytes(rows, text_columns=[2]), "r.xlsx", cipher=cipher).ok
    vol = session.scalar(select(Volunteer))
    assert vol.id_number_masked == idn[:4] + "*" * 10 + idn[-4:]
    assert cipher.decrypt(vol.id_number_enc) == idn
    # Nothing stored in any column of the row reveals the number.
    raw = session.execute(text("SELECT * FROM volunteers")).one()
    for value in raw:
        if isinstance(value, (bytes, memoryview)):
            value = bytes(value).decode("latin-1")
        assert idn not in str(value) and idn[6:14] not in str(value)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        session.commit()
        session.execute(text("PRAGMA wal_checkpoint(FULL)"))
        path = uri[len("sqlite:///"):]
        with open(path, "rb") as fh:
            blob = fh.read()
        assert idn.encode() not in blob


def test_id_number_on_another_volunteer_is_refused(session, cipher):
    # For an admin (who may see full numbers); a non-admin's row is held instead (test_id_oracle.py).
    idn = id_number("31011219800101123")
    rows = [["姓名", "手机号", "身份证号"], ["甲", "13900000011", idn]]
    assert import_volunteers(session, csv_bytes(rows), "r.csv", cipher=cipher).ok
    rows2 = [["姓名", "手机号", "身份证号"], ["乙", "13900000012", idn]]
    report = import_volunteers(session, csv_bytes(rows2), "r.csv", cipher=cipher, can_see_id_numbers=True)
    assert [e.code for e in report.errors] == ["id_number_taken"]
    assert idn not in " ".join(report.lines())


def test_missing_required_column_is_one_clear_error(session, cipher):
    report = import_volunteers(session, csv_bytes([["姓名", "居委"], ["甲", "x"]]), "r.csv", cipher=cipher)
    assert [(e.row, e.code) for e in report.errors] == [(1, "missing_columns")]
    assert "手机号" in report.errors[0].message


def test_points_in_gcj02_are_stored_as_wgs84(session):
    # Shanghai reference pair (WGS-84 31.1774276, 121.5272106)
    rows = [["code", "name", "lat", "lon", "radius_m", "address", "coords"],
            ["P1", "测试点一", 31.17530398364597, 121.531541859215, 120, "某路口", "gcj02"],
            ["P2", "测试点二", 31.1774276, 121.5272106, None, None, None]]
    report = import_points(session, xlsx_bytes(rows), "p.xlsx")
    assert report.ok, report.lines()
    p1 = session.scalar(select(PatrolPoint).where(PatrolPoint.code == "P1"))
    assert distance_m(p1.lat, p1.lon, 31.1774276, 121.5272106) < 1.0
    assert p1.radius_m == 120
    p2 = session.scalar(select(PatrolPoint).where(PatrolPoint.code == "P2"))
    assert (p2.lat, p2.lon, p2.radius_m) == (31.1774276, 121.5272106, 150)


def test_points_default_system_option_and_update_by_code(session):
    rows = [["点位编号", "点位名称", "纬度", "经度"], ["P1", "旧名", 31.17530398364597, 121.531541859215]]
    assert import_points(session, csv_bytes(rows), "p.csv", coords="gcj02").ok
    rows[1][1] = "新名"
    report = import_points(session, csv_bytes(rows), "p.csv", coords="gcj02")
    assert (report.created, report.updated) == (0, 1)
    p = session.scalar(select(PatrolPoint))
    assert p.name == "新名" and distance_m(p.lat, p.lon, 31.1774276, 121.5272106) < 1.0


def test_point_errors(session):
    rows = [["code", "name", "lat", "lon", "coords"], ["P1", "a", 31.1, None, None],
            ["P2", "b", "north", 121.5, None], ["P3", "c", 31.1, 121.5, "utm"], ["P1", "d", None, None, None]]
    report = import_points(session, csv_bytes(rows), "p.csv")
    assert sorted((e.row, e.code) for e in report.errors) == [
        (2, "coords_incomplete"), (3, "bad_number"), (4, "coords_unknown"), (5, "duplicate_in_file")]
    assert count(session, PatrolPoint) == 0


def test_shifts_in_local_time_create_the_event(session):
    import_points(session, csv_bytes([["code", "name"], ["P1", "一号点"]]), "p.csv")
    rows = [["event", "point_code", "start", "end", "capacity"],
            ["2027春节烟花爆竹安全管控", "P1", "2027-02-05 18:00", "2027-02-05 23:30", 10],
            ["2027春节烟花爆竹安全管控", "P1", "2027/2/10 19:00", "2027/2/10 22:00", None]]
    report = import_shifts(session, csv_bytes(rows), "s.csv")
    assert report.ok, report.lines()
    event = session.scalar(select(Event))
    assert (event.starts_on, event.ends_on) == (date(2027, 2, 5), date(2027, 2, 10))
    first = session.scalar(select(Shift).order_by(Shift.starts_at))
    assert first.starts_at == utc(2027, 2, 5, 10, 0)  # 18:00 Shanghai = 10:00 UTC
    assert first.capacity == 10
    rows[1][4] = 20
    again = import_shifts(session, csv_bytes(rows), "s.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert count(session, Shift) == 2


def test_shift_errors(session):
    import_points(session, csv_bytes([["code", "name"], ["P1", "一号点"]]), "p.csv")
    rows = [["活动", "点位编号", "开始时间", "结束时间", "人数"],
            ["E", "P9", "2027-02-05 18:00", "2027-02-05 20:00", 5],
            ["E", "P1", "2027-02-05 18:00", "2027-02-05 17:00", 5],
            ["E", "P1", "tomorrow", "2027-02-05 17:00", 5],
            ["E", "P1", "2027-02-05 18:00", "2027-02-05 20:00", 0]]
    report = import_shifts(session, xlsx_bytes(rows), "s.xlsx")
    assert sorted((e.row, e.code) for e in report.errors) == [
        (2, "unknown_point"), (3, "end_before_start"), (4, "bad_datetime"), (5, "out_of_range")]
    assert count(session, Event) == 0


def test_xlsx_datetime_cells(session):
    from datetime import datetime

    import_points(session, csv_bytes([["code", "name"], ["P1", "一号点"]]), "p.csv")
    rows = [["event", "point_code", "start", "end"], ["E", "P1", datetime(2027, 2, 5, 18), datetime(2027, 2, 5, 21)]]
    report = import_shifts(session, xlsx_bytes(rows), "s.xlsx")
    assert report.ok, report.lines()
    assert session.scalar(select(Shift.ends_at)) == utc(2027, 2, 5, 13)


def test_unreadable_file_is_reported_not_raised(session, cipher):
    report = import_volunteers(session, b"PK\x03\x04garbage", "r.xlsx", cipher=cipher)
    assert [e.code for e in report.errors] == ["bad_file"]
    report = import_volunteers(session, b"\x00\x01", "r.pdf", cipher=cipher)
    assert [e.code for e in report.errors] == ["bad_file_type"]
