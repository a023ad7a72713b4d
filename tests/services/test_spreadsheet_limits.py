"""Spreadsheet bombs (issue 10 item 13): an upload is read row by row, within fixed limits.

A 1.5 KB .xlsx can declare the whole grid (A1:XFD1048576) or hold one cell on row 1,048,576;
the old reader padded every row to the declared width and materialised every missing row, i.e.
gigabytes. These tests build such files by hand and read them under a memory bound.
"""
from __future__ import annotations

import io
import resource
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from services.errors import DomainError
from services.imports import import_volunteers
from services.spreadsheet import MAX_COLUMNS, MAX_ROWS, read_sheet
from tests.factories import csv_bytes, roster_rows

ROOT = Path(__file__).resolve().parents[2]
ALIASES = {"name": ("姓名",), "phone": ("手机号",)}

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
</Types>"""
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"""
_WB_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
</Relationships>"""


def bomb_xlsx(rows_xml: str, dimension: str = "A1:XFD1048576") -> bytes:
    """A minimal hand-made .xlsx (inline strings) with the given <row> elements and dimension."""
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             f'<dimension ref="{dimension}"/><sheetData>{rows_xml}</sheetData></worksheet>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _WB_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    return buf.getvalue()


def _is(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


HEADER = f'<row r="1">{_is("A1", "姓名")}{_is("B1", "手机号")}</row>'
ONE_ROW = f'<row r="2">{_is("A2", "张三")}{_is("B2", "13900000001")}</row>'
FAR_ROW = f'<row r="1048576">{_is("A1048576", "李四")}{_is("B1048576", "13900000002")}</row>'
WIDE_CELL = f'<row r="3">{_is("XFD3", "x")}</row>'


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_bomb_files_are_tiny():
    assert len(bomb_xlsx(HEADER + ONE_ROW)) < 2000
    assert len(bomb_xlsx(HEADER + ONE_ROW + FAR_ROW)) < 2000


def test_declared_full_grid_reads_only_the_real_rows_within_a_few_megabytes():
    data = bomb_xlsx(HEADER + ONE_ROW)
    sheet = None

    def run():
        nonlocal sheet
        sheet = read_sheet(data, "bomb.xlsx", ALIASES, required=("name", "phone"))

    peak = _peak_bytes(run)
    assert [(r.number, r.values) for r in sheet.rows] == [(2, {"name": "张三", "phone": "13900000001"})]
    assert peak < 8 * 1024 * 1024, peak


def test_a_row_numbered_1048576_is_read_with_its_real_row_number():
    """The memory side of this file is `test_bomb_import_in_a_process_limited_to_256_mb`
    (tracemalloc makes a million empty-row steps take half a minute)."""
    sheet = read_sheet(bomb_xlsx(HEADER + ONE_ROW + FAR_ROW), "bomb.xlsx", ALIASES, required=("name", "phone"))
    assert [r.number for r in sheet.rows] == [2, 1048576]


def test_a_cell_beyond_the_column_limit_is_refused():
    data = bomb_xlsx(HEADER + ONE_ROW + WIDE_CELL)
    with pytest.raises(DomainError) as exc:
        read_sheet(data, "bomb.xlsx", ALIASES, required=("name", "phone"))
    assert exc.value.code == "too_many_columns"
    wide = csv_bytes([["姓名", "手机号"] + [""] * MAX_COLUMNS + ["x"], ["张三", "13900000001"]])
    with pytest.raises(DomainError) as exc:
        read_sheet(wide, "wide.csv", ALIASES, required=("name", "phone"))
    assert exc.value.code == "too_many_columns"


def test_more_rows_than_the_limit_stop_the_import_with_a_clear_error(session, cipher):
    rows = "".join(f'<row r="{n}">{_is(f"A{n}", "某")}{_is(f"B{n}", f"139{n:08d}")}</row>'
                   for n in range(2, MAX_ROWS + 3))
    report = import_volunteers(session, bomb_xlsx(HEADER + rows, dimension="A1:B2"), "big.xlsx", cipher=cipher)
    assert not report.ok
    assert report.errors[0].code == "too_many_rows"
    assert str(MAX_ROWS) in report.errors[0].message
    big_csv = csv_bytes(roster_rows(MAX_ROWS + 1))
    report = import_volunteers(session, big_csv, "big.csv", cipher=cipher)
    assert [e.code for e in report.errors] == ["too_many_rows"]


def test_declared_uncompressed_size_is_capped():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("xl/sharedStrings.xml", b"<sst>" + b" " * (70 * 1024 * 1024) + b"</sst>")
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(DomainError) as exc:
        read_sheet(buf.getvalue(), "zip.xlsx", ALIASES, required=("name",))
    assert exc.value.code == "file_too_large"


def test_bomb_import_in_a_process_limited_to_256_mb(tmp_path):
    """The whole roster import path under RLIMIT_AS: the old reader dies with MemoryError."""
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bomb_xlsx(HEADER + ONE_ROW + FAR_ROW))
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        from services.spreadsheet import read_sheet
        data = open({str(path)!r}, "rb").read()
        resource.setrlimit(resource.RLIMIT_AS, (256 * 1024 * 1024, 256 * 1024 * 1024))
        sheet = read_sheet(data, "bomb.xlsx", {{"name": ("姓名",), "phone": ("手机号",)}}, required=("name", "phone"))
        print(len(sheet.rows))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "2"
    assert resource  # the limit is set inside the child
