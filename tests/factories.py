"""Helpers that build spreadsheets and records for tests."""
from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from openpyxl import Workbook

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def xlsx_bytes(rows: Sequence[Sequence[Any]], *, text_columns: Sequence[int] = ()) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    for col in text_columns:
        for cell in ws.iter_cols(min_col=col + 1, max_col=col + 1).__next__():
            cell.number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: Sequence[Sequence[Any]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def id_number(body17: str) -> str:
    """Complete a 17-digit body with its GB 11643 check character."""
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, _WEIGHTS)) % 11]


def phone(i: int) -> str:
    return f"139{i:08d}"


def roster_rows(n: int, *, with_ids: bool = False) -> list[list[Any]]:
    header = ["姓名", "手机号", "所属居委", "马甲编号"] + (["身份证号"] if with_ids else [])
    rows: list[list[Any]] = [header]
    for i in range(n):
        row: list[Any] = [f"志愿者{i + 1:03d}", phone(i + 1), ["塘口居委", "丰顺居委", "芦胜居委"][i % 3],
                          f"PJ-{i + 1:04d}"]
        if with_ids:
            row.append(id_number(f"310112{1960 + i % 40}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"))
        rows.append(row)
    return rows
