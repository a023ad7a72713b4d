"""Printable sign-in sheets for a shift, and the `.xlsx` of the same layout that the attendance
import reads back: a night on paper (power cut, dead phones) costs one typing session, not a lost
record."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.colors import HexColor, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.event import ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.point import PatrolPoint
from models.volunteer import Volunteer
from services.clock import SHANGHAI
from services.errors import DomainError
from services.i18n import _
from services.posters import cjk_font
from services.spreadsheet import append_row, new_workbook, set_text, workbook_bytes

BLANK_ROWS = 8  # for walk-ins


@dataclass(frozen=True)
class SheetLine:
    name: str
    phone: str
    vest_no: str | None
    team: str | None


@dataclass(frozen=True)
class ShiftSheet:
    event_name: str
    point_code: str
    point_name: str
    starts_at: datetime
    ends_at: datetime
    lines: list[SheetLine]


def shift_sheet(session: Session, shift_id: int) -> ShiftSheet:
    row = session.execute(select(Shift, Event, PatrolPoint).join(Event, Event.id == Shift.event_id)
                          .join(PatrolPoint, PatrolPoint.id == Shift.point_id).where(Shift.id == shift_id)).first()
    if row is None:
        raise DomainError("not_found", _("班次不存在"))
    shift, event, point = row
    vols = session.scalars(select(Volunteer).join(Assignment, Assignment.volunteer_id == Volunteer.id)
                           .where(Assignment.shift_id == shift_id, Assignment.status != ASSIGNMENT_DECLINED)
                           .order_by(Volunteer.team, Volunteer.vest_no, Volunteer.name))
    return ShiftSheet(event.name, point.code, point.name, shift.starts_at, shift.ends_at,
                      [SheetLine(v.name, v.phone, v.vest_no, v.team) for v in vols])


def _title(sheet: ShiftSheet) -> str:
    start = sheet.starts_at.astimezone(SHANGHAI)
    end = sheet.ends_at.astimezone(SHANGHAI)
    return f"{sheet.event_name} · {sheet.point_code} {sheet.point_name} · {start:%Y-%m-%d %H:%M}–{end:%H:%M}"


HEADERS = ("手机号", "姓名", "马甲编号", "点位编号", "活动", "签到时间", "签退时间", "备注")


def sheet_xlsx(sheet: ShiftSheet) -> bytes:
    """Columns the attendance import reads; times are typed as `2027-02-05 18:05`."""
    from openpyxl.styles import Alignment, Font  # imported here: openpyxl is 18 MB the bot and sender never need
    wb = new_workbook(_("签到表"))
    ws = wb.active
    append_row(ws, HEADERS)
    for line in sheet.lines:
        append_row(ws, [line.phone, line.name, line.vest_no or "", sheet.point_code, sheet.event_name, None, None, None])
    for _i in range(BLANK_ROWS):
        append_row(ws, [None, None, None, sheet.point_code, sheet.event_name, None, None, None])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for col, width in zip("ABCDEFGH", (15, 10, 10, 10, 24, 18, 18, 20)):
        ws.column_dimensions[col].width = width
    for cell in ws["A"]:
        cell.number_format = "@"
    ws.freeze_panes = "A2"
    note = set_text(ws, ws.max_row + 2, 1, _("时间格式：2027-02-05 18:05（北京时间）。") + _title(sheet))
    note.alignment = Alignment(wrap_text=False)
    # The note row has no phone and no times, so the import skips it.
    return workbook_bytes(wb)


def sheet_pdf(sheet: ShiftSheet) -> bytes:
    font = cjk_font()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4)
    c.setTitle(_("平安马甲 纸质签到表"))
    width, height = A4
    cols = [("序号", 12), ("姓名", 26), ("马甲编号", 22), ("手机尾号", 20), ("签到时间", 24), ("签退时间", 24),
            ("签名", 30), ("备注", 22)]
    row_h = 9 * mm
    rows = [(ln.name, ln.vest_no or "", ln.phone[-4:]) for ln in sheet.lines] + [("", "", "")] * BLANK_ROWS
    per_page = int((height - 60 * mm) // row_h)
    for page_start in range(0, len(rows), per_page):
        c.setFont(font, 16)
        c.drawString(15 * mm, height - 18 * mm, _("平安马甲 · 纸质签到表"))
        c.setFont(font, 10)
        c.drawString(15 * mm, height - 26 * mm, _title(sheet))
        c.drawString(15 * mm, height - 32 * mm, _("停电或手机无法使用时填写，事后由平安办录入系统（签到/签退写到分钟）。"))
        y = height - 42 * mm
        x = 15 * mm
        c.setFillColor(HexColor("#f26b1d"))
        c.rect(x, y - row_h + 2 * mm, sum(w for _n, w in cols) * mm, row_h, stroke=0, fill=1)
        c.setFillColor(black)
        cx = x
        for label, w in cols:
            c.drawString(cx + 1.5 * mm, y - 4 * mm, _(label))
            cx += w * mm
        y -= row_h
        for i, (name, vest, tail) in enumerate(rows[page_start:page_start + per_page], start=page_start + 1):
            cx = x
            for (label, w), value in zip(cols, (str(i), name, vest, tail, "", "", "", "")):
                c.rect(cx, y - row_h + 2 * mm, w * mm, row_h, stroke=1, fill=0)
                c.drawString(cx + 1.5 * mm, y - 4 * mm, value)
                cx += w * mm
            y -= row_h
        c.showPage()
    c.save()
    return buf.getvalue()
