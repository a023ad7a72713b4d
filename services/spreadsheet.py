"""Reading the spreadsheets a safety office already has (.xlsx from Excel/WPS and .csv files),
and writing every spreadsheet the service hands out.

CSV files from Chinese Windows are usually GB18030 (WPS, Excel "CSV"), sometimes UTF-8 with a
BOM ("CSV UTF-8"); both are accepted. Row numbers are the spreadsheet's own (header = row 1) so
an error report points at the row a person sees.

Reading streams: an uploaded file is untrusted, and a 1.5 KB .xlsx can declare a sheet of
A1:XFD1048576 or a single cell on row 1,048,576. Rows are read one at a time from the XML, the
declared dimension is ignored, at most `MAX_COLUMNS` columns of a row are looked at, and the file
is refused as soon as it has more than `MAX_ROWS` non-blank data rows (see docs/imports.md).

Writing goes through `write_xlsx`/`write_csv` (streamed tables: the exports) or
`new_workbook`/`append_row`/`csv_bytes` (small laid-out sheets: the self-evaluation table, the
sign-in sheet) only: any text that starts like a formula is written as text (OWASP CSV injection),
so a volunteer called `=HYPERLINK(...)` cannot make a coordinator's Excel send the sheet anywhere.
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence

from services.errors import DomainError
from services.i18n import _
from services.text import strip_controls

XLSX_MAGIC = b"PK\x03\x04"
# Import limits (docs/imports.md): the roster is 500 people; a year of paper sheets a few thousand.
MAX_ROWS = 20_000
MAX_COLUMNS = 100
# Sum of the declared uncompressed sizes of an .xlsx's parts (zipfile enforces the declared size).
MAX_XLSX_UNCOMPRESSED = 64 * 1024 * 1024


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


def _too_many_rows() -> DomainError:
    return DomainError("too_many_rows", _("文件超过 %(n)d 行数据，请分成几个文件导入", n=MAX_ROWS))


def _too_many_columns() -> DomainError:
    return DomainError("too_many_columns", _("文件超过 %(n)d 列，请删除多余的列后再导入", n=MAX_COLUMNS))


def _raw_rows_csv(data: bytes) -> Generator[list[Any], None, None]:
    text = decode_csv(data)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB)
            raise DomainError("bad_file", _("无法读取该 CSV 文件：%(e)s", e=str(exc)[:200])) from None
        if len(row) > MAX_COLUMNS and any(cell.strip() for cell in row[MAX_COLUMNS:]):
            raise _too_many_columns()
        yield row[:MAX_COLUMNS]


def _check_xlsx_size(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise DomainError("bad_file", _("无法读取该 Excel 文件：文件已损坏")) from None
    if total > MAX_XLSX_UNCOMPRESSED:
        raise DomainError("file_too_large", _("Excel 文件解压后过大，请只保留需要导入的数据"))


def _raw_rows_xlsx(data: bytes) -> Generator[list[Any], None, None]:
    """Rows of the first sheet, one at a time, cut to MAX_COLUMNS.

    The sheet's declared dimension is dropped (`reset_dimensions`): openpyxl would otherwise pad
    every row to the declared width and yield every missing row up to the declared height. Without
    it a missing row is an empty tuple and a row is as wide as its last cell.
    """
    from openpyxl import load_workbook

    _check_xlsx_size(data)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a damaged file
        raise DomainError("bad_file", _("无法读取该 Excel 文件：%(e)s", e=str(exc))) from None
    try:
        ws = wb.worksheets[0]
        ws.reset_dimensions()
        for row in ws.iter_rows(values_only=True):
            if len(row) > MAX_COLUMNS and any(v not in (None, "") for v in row[MAX_COLUMNS:]):
                raise _too_many_columns()
            yield list(row[:MAX_COLUMNS])
    except DomainError:
        raise
    except Exception as exc:  # a damaged sheet part shows up only while reading it
        raise DomainError("bad_file", _("无法读取该 Excel 文件：%(e)s", e=str(exc))) from None
    finally:
        wb.close()


def read_sheet(data: bytes, filename: str, aliases: Mapping[str, Sequence[str]],
               required: Sequence[str]) -> Sheet:
    """Parse a file into rows keyed by canonical column names.

    `aliases` maps each canonical name to the headers people use for it (Chinese or English).
    Unknown columns are ignored; a missing required column is an error for the whole file. Only
    the non-blank rows are kept, and reading stops with `too_many_rows` after MAX_ROWS of them.
    """
    suffix = Path(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm") or data[:4] == XLSX_MAGIC:
        raw = _raw_rows_xlsx(data)
    elif suffix in (".csv", ".txt", ""):
        raw = _raw_rows_csv(data)
    else:
        raise DomainError("bad_file_type", _("不支持的文件类型“%(s)s”：请使用 .xlsx 或 .csv", s=suffix))
    try:
        return _read_rows(raw, aliases, required)
    finally:
        raw.close()  # an early stop releases the workbook now, not at garbage collection


def _read_rows(raw: Iterator[list[Any]], aliases: Mapping[str, Sequence[str]], required: Sequence[str]) -> Sheet:
    try:
        header = next(raw)
    except StopIteration:
        raise DomainError("empty_file", _("文件是空的")) from None

    lookup: dict[str, str] = {}
    for canonical, names in aliases.items():
        for name in (canonical, *names):
            lookup[_norm_header(name)] = canonical
    index: dict[int, str] = {}
    for i, cell in enumerate(header):
        canonical = lookup.get(_norm_header(strip_controls(cell)))
        if canonical and canonical not in index.values():
            index[i] = canonical
    missing = [c for c in required if c not in index.values()]
    if missing:
        names = "、".join(f"{aliases[c][0]}/{c}" if aliases.get(c) else c for c in missing)
        raise DomainError("missing_columns", _("缺少必需的列：%(cols)s（第 1 行应为表头）", cols=names))

    sheet = Sheet(columns=list(index.values()))
    for number, cells in enumerate(raw, start=2):
        if not any(c is not None and c != "" for c in cells):
            continue  # blank rows cost nothing and are not counted
        values: dict[str, Any] = {}
        for i, canonical in index.items():
            value = cells[i] if i < len(cells) else None
            if isinstance(value, str):
                value = strip_controls(value).strip() or None
            values[canonical] = value
        if all(v is None for v in values.values()):
            continue
        if len(sheet.rows) >= MAX_ROWS:
            raise _too_many_rows()
        sheet.rows.append(SheetRow(number=number, values=values))
    return sheet


# --- writing ------------------------------------------------------------------------------------

# OWASP "CSV injection": a cell starting with one of these is a formula (or DDE) in Excel/WPS.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def _writable(value: Any) -> Any:
    """Text without what openpyxl cannot write (`ILLEGAL_CHARACTERS_RE`): one such character in
    a stored value must not make every export fail."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def new_workbook(title: str):
    """A workbook whose first sheet is called `title`; fill it with `append_row` only."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = title
    return wb


def append_row(ws, values: Iterable[Any]) -> None:
    """`ws.append` that writes every formula-looking text as a text cell, never a formula.

    openpyxl stores any string starting with `=` as a formula; the cell's type is forced back to
    text after the append, so the value reads back unchanged (a name stays a name).
    """
    values = [_writable(v) for v in values]
    ws.append(values)
    row = ws.max_row
    for column, value in enumerate(values, start=1):
        if looks_like_formula(value):
            cell = ws.cell(row=row, column=column)
            cell.value = value
            cell.data_type = "s"


def set_text(ws, row: int, column: int, value: Any):
    """One cell, with the same rule as `append_row`."""
    value = _writable(value)
    cell = ws.cell(row=row, column=column)
    cell.value = value
    if looks_like_formula(value):
        cell.data_type = "s"
    return cell


def workbook_bytes(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_cell(value: Any) -> str:
    """A CSV field: formula-looking text gets the OWASP `'` prefix (CSV has no "text" type)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = _writable(str(value))
    return "'" + text if looks_like_formula(text) else text


def csv_bytes(rows: Iterable[Iterable[Any]]) -> bytes:
    """UTF-8 with a BOM, so that Excel on Chinese Windows opens it without mojibake."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


# --- streamed tables ------------------------------------------------------------------------------

PROGRESS_EVERY = 5000  # rows between two progress calls of the streamed writers


@dataclass
class Table:
    """One sheet of an export: a header and rows produced lazily (a generator reading the
    database in batches), so no more than one batch is ever held in memory.

    `widths` are column widths in Excel units (a CJK character is about two); `text_columns` are
    0-based columns whose cells carry the text format `@` (phones, ID numbers: Excel would show
    13800138000 as 1.38E+10 and drop an ID number's last digits)."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Any]]
    widths: Sequence[float] = ()
    text_columns: Collection[int] = ()


def _report_progress(progress: Callable[[int], None] | None, done: int, every: int) -> None:
    if progress is not None and done % every == 0:
        progress(done)


def write_xlsx(out: IO[bytes], tables: Sequence[Table], *, progress: Callable[[int], None] | None = None,
               progress_every: int = PROGRESS_EVERY) -> int:
    """Write `tables` (one sheet each) as a write-only .xlsx into `out`; returns the data rows written.

    Write-only mode keeps no cell in memory (rows go to a temporary file as they come), so the
    size of an export costs disk, not RAM. The rules of `append_row` hold: formula-looking text is
    a text cell, characters openpyxl cannot write are dropped. Column widths are set before the
    first row, the only time write-only mode allows it. `progress(rows)` is called every
    `progress_every` data rows (all sheets together)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    try:
        return _write_sheets(wb, out, tables, progress, progress_every)
    except BaseException:
        _abandon(wb)
        raise


def _abandon(wb) -> None:
    """An export stopped half-way (an error, a worker shutting down): close each write-only sheet
    and delete its temporary file now, rather than leave openpyxl to do it at garbage collection
    (it would write into a file the caller has closed) or at exit."""
    for ws in wb.worksheets:
        try:
            if not ws.closed:
                ws.close()
            if ws._writer is not None:
                ws._writer.cleanup()
        except Exception:  # best effort: the export is being abandoned anyway
            pass


def _write_sheets(wb, out: IO[bytes], tables: Sequence[Table], progress: Callable[[int], None] | None,
                  progress_every: int) -> int:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    done = 0
    for table in tables:
        ws = wb.create_sheet(_writable(table.title)[:31])
        for index, width in enumerate(table.widths, start=1):
            ws.column_dimensions[get_column_letter(index)].width = width
        text_columns = frozenset(table.text_columns)

        def cells(values: Iterable[Any]) -> list[Any]:
            row: list[Any] = []
            for column, value in enumerate(values):
                value = _writable(value)
                if column in text_columns or looks_like_formula(value):
                    cell = WriteOnlyCell(ws, value=value)
                    if isinstance(value, str):
                        cell.data_type = "s"  # never a formula
                    if column in text_columns:
                        cell.number_format = "@"
                    row.append(cell)
                else:
                    row.append(value)
            return row

        ws.append(cells(table.header))
        for values in table.rows:
            ws.append(cells(values))
            done += 1
            _report_progress(progress, done, progress_every)
    wb.save(out)
    return done


def write_csv(out: IO[bytes], table: Table, *, progress: Callable[[int], None] | None = None,
              progress_every: int = PROGRESS_EVERY) -> int:
    """Write one table as CSV into `out` (UTF-8 with a BOM, every field through `csv_cell`), row by
    row; returns the data rows written. A short row is padded to the header's width, as the CSV
    read back from a workbook was."""
    import codecs

    width = len(table.header)
    text = codecs.getwriter("utf-8")(out)
    text.write("\ufeff")
    writer = csv.writer(text)
    writer.writerow([csv_cell(v) for v in table.header])
    done = 0
    for values in table.rows:
        fields = [csv_cell(v) for v in values]
        if len(fields) < width:
            fields += [""] * (width - len(fields))
        writer.writerow(fields)
        done += 1
        _report_progress(progress, done, progress_every)
    return done


def write_table(out: IO[bytes], fmt: str, tables: Sequence[Table], *,
                progress: Callable[[int], None] | None = None, progress_every: int = PROGRESS_EVERY) -> int:
    """`.xlsx` with every table, or `.csv` with the first one (the same export in the other format).
    The tables' row generators are closed when it returns or fails."""
    try:
        if fmt == "csv":
            return write_csv(out, tables[0], progress=progress, progress_every=progress_every)
        if fmt == "xlsx":
            return write_xlsx(out, tables, progress=progress, progress_every=progress_every)
        raise DomainError("bad_format", _("不支持的导出格式“%(f)s”", f=fmt))
    finally:
        for table in tables:  # an export stopped half-way closes its row generators (and cursors) now
            close = getattr(table.rows, "close", None)
            if close is not None:
                close()


def table_bytes(fmt: str, tables: Sequence[Table]) -> bytes:
    """The whole file in memory: for the CLI and tests; the web streams into a temporary file."""
    buf = io.BytesIO()
    write_table(buf, fmt, tables)
    return buf.getvalue()


def workbook_to_csv(wb) -> bytes:
    """The first sheet of a workbook built with `append_row`, as CSV (the same export, other format)."""
    return csv_bytes(ws_row for ws_row in wb.worksheets[0].iter_rows(values_only=True))


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
