"""Reading the spreadsheets a safety office already has: .xlsx from Excel/WPS and .csv files.

CSV files from Chinese Windows are usually GB18030 (WPS, Excel "CSV"), sometimes UTF-8 with a
BOM ("CSV UTF-8"); both are accepted. Row numbers are the spreadsheet's own (header = row 1) so
an error report points at the row a person sees.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Mapping, Sequence

from services.errors import DomainError
from services.i18n import _

XLSX_MAGIC = b"PK\x03\x04"


@dataclass
class SheetRow:
    number: int
    values: dict[str, Any]

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def text(self, key: str) -> str | None:
        """The cell as trimmed text, or None when blank. Whole floats lose their `.0`."""
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, datetime):
            return value.isoformat(sep=" ")
        text = str(value).strip()
        return text or None


@dataclass
class Sheet:
    columns: list[str]
    rows: list[SheetRow] = field(default_factory=list)


def _norm_header(value: Any) -> str:
    return str(value or "").strip().lower().replace(" ", "").replace("_", "").replace("（", "(").replace("）", ")")


def decode_csv(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DomainError("bad_encoding", _("无法识别文件编码：请另存为 UTF-8 或 GB18030 编码的 CSV，或 .xlsx"))


def _raw_rows_csv(data: bytes) -> list[list[Any]]:
    text = decode_csv(data)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    return [list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]


def _raw_rows_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a damaged file
        raise DomainError("bad_file", _("无法读取该 Excel 文件：%(e)s", e=str(exc))) from None
    try:
        ws = wb.worksheets[0]
        return [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def read_sheet(data: bytes, filename: str, aliases: Mapping[str, Sequence[str]],
               required: Sequence[str]) -> Sheet:
    """Parse a file into rows keyed by canonical column names.

    `aliases` maps each canonical name to the headers people use for it (Chinese or English).
    Unknown columns are ignored; a missing required column is an error for the whole file.
    """
    suffix = Path(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm") or data[:4] == XLSX_MAGIC:
        raw = _raw_rows_xlsx(data)
    elif suffix in (".csv", ".txt", ""):
        raw = _raw_rows_csv(data)
    else:
        raise DomainError("bad_file_type", _("不支持的文件类型“%(s)s”：请使用 .xlsx 或 .csv", s=suffix))
    if not raw:
        raise DomainError("empty_file", _("文件是空的"))

    lookup: dict[str, str] = {}
    for canonical, names in aliases.items():
        for name in (canonical, *names):
            lookup[_norm_header(name)] = canonical
    header = raw[0]
    index: dict[int, str] = {}
    for i, cell in enumerate(header):
        canonical = lookup.get(_norm_header(cell))
        if canonical and canonical not in index.values():
            index[i] = canonical
    missing = [c for c in required if c not in index.values()]
    if missing:
        names = "、".join(f"{aliases[c][0]}/{c}" if aliases.get(c) else c for c in missing)
        raise DomainError("missing_columns", _("缺少必需的列：%(cols)s（第 1 行应为表头）", cols=names))

    sheet = Sheet(columns=list(index.values()))
    for number, cells in enumerate(raw[1:], start=2):
        values: dict[str, Any] = {}
        for i, canonical in index.items():
            value = cells[i] if i < len(cells) else None
            if isinstance(value, str):
                value = value.strip() or None
            values[canonical] = value
        if all(v is None for v in values.values()):
            continue
        sheet.rows.append(SheetRow(number=number, values=values))
    return sheet


_DT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S",
               "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y.%m.%d %H:%M", "%Y年%m月%d日 %H:%M",
               "%Y年%m月%d日%H:%M")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")


def parse_local_datetime(value: Any) -> datetime:
    """A wall-clock date and time as typed in a sheet (naive, in the programme's time zone)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, date):
        return datetime.combine(value, time())
    text = str(value or "").strip()
    for fmt in _DT_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise DomainError("bad_datetime", _("时间“%(v)s”无法识别，请写成 2027-02-05 18:00", v=text))


def parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise DomainError("bad_date", _("日期“%(v)s”无法识别，请写成 2027-02-05", v=text))
