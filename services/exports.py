"""Spreadsheets a finance office and a volunteer registry accept: the year-end self-evaluation
table in the project description's layout, the hours roster, attendance and expenditure lists."""
from __future__ import annotations

from datetime import date

from openpyxl.styles import Alignment, Font, PatternFill
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.attendance import Attendance, HourAdjustment
from models.event import Event
from models.point import PatrolPoint
from models.programme import Expenditure
from models.volunteer import Volunteer
from services.clock import SHANGHAI
from services.hours import volunteer_hours
from services.i18n import _
from services.indicators import IndicatorReport, active_volunteer_ids
from services.programme import LINE_NAMES, programme_year
from services.programme_year import year_dates
from services.spreadsheet import append_row, new_workbook, workbook_bytes

STATUS_WORDS = {"green": "已达成", "amber": "进行中（按进度达标）", "red": "未达成"}
FILLS = {"green": "C6EFCE", "amber": "FFEB9C", "red": "FFC7CE"}


def self_evaluation_xlsx(report: IndicatorReport, *, office: str = "浦锦街道平安办") -> bytes:
    return workbook_bytes(self_evaluation_workbook(report, office=office))


def self_evaluation_workbook(report: IndicatorReport, *, office: str = "浦锦街道平安办"):
    """一级/二级/三级指标, 年度指标值, 实际完成值, 完成情况, 偏差说明 — one row per indicator.

    Targets such as "=500(人)" or "≥90%" are texts of the project description, written as text."""
    wb = new_workbook(_("绩效自评"))
    ws = wb.active
    append_row(ws, [_("%(y)d 年平安志愿者项目绩效自评表", y=report.year)])
    append_row(ws, [_("填报单位：%(o)s；数据截至 %(d)s%(ytd)s", o=office, d=report.as_of.isoformat(),
                 ytd=_("（年度进行中）") if report.year_to_date else "")])
    header = ["序号", "一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "完成情况", "偏差说明及依据"]
    append_row(ws, [_(h) for h in header])
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for row in report.rows:
        note = row.note
        if row.status != "green":
            note = (note + "；" if note else "") + _deviation(row)
        append_row(ws, [row.number, row.level1, row.level2, row.name, row.target, row.actual, STATUS_WORDS[row.status], note])
        ws.cell(row=ws.max_row, column=7).fill = PatternFill("solid", fgColor=FILLS[row.status])
    for col, width in zip("ABCDEFGH", (6, 12, 18, 30, 16, 40, 18, 50)):
        ws.column_dimensions[col].width = width
    for r in ws.iter_rows(min_row=4):
        for cell in r:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    return wb


def _deviation(row) -> str:
    ev = row.evidence or {}
    if row.number == 6 and ev.get("below_count"):
        return _("%(n)d 名志愿者未达到目标时长（名单见系统）", n=ev["below_count"])
    if row.number in (9, 10) and ev.get("late_count"):
        return _("%(n)d 名志愿者未按时完成", n=ev["late_count"])
    if row.number == 7 and ev.get("flagged"):
        return _("%(n)d 条签到记录待核对", n=ev["flagged"])
    if row.number == 11 and ev.get("complaints"):
        return _("投诉登记 %(n)d 件，处理情况见投诉台账", n=ev["complaints"])
    if row.status == "amber":
        return _("年度进行中，按进度评估")
    return _("未达到年度指标值")


def hours_roster_xlsx(session: Session, year: int, *, as_of: date) -> bytes:
    return workbook_bytes(hours_roster_workbook(session, year, as_of=as_of))


def hours_roster_workbook(session: Session, year: int, *, as_of: date):
    """Per volunteer: scan-verified, imported and adjusted hours in separate columns; "是否达标"
    against that year's own target (its settings row), as indicator 6 counts."""
    wb = new_workbook(_("工时"))
    ws = wb.active
    append_row(ws, [_(h) for h in ("姓名", "所属居委", "马甲编号", "扫码核验（小时）", "历史导入（小时）", "人工登记（小时）",
                              "合计（小时）", "是否达标")])
    active = set(active_volunteer_ids(session, as_of))
    target = float(programme_year(session, year).target_hours)
    for v in session.scalars(select(Volunteer).where(Volunteer.id.in_(active)).order_by(Volunteer.team, Volunteer.vest_no)):
        s = volunteer_hours(session, v.id, year, target_hours=target)
        append_row(ws, [v.name, v.team or "", v.vest_no or "", s.verified, s.imported, s.adjusted, s.total,
                   _("是") if s.met else _("否")])
    return wb


def attendance_xlsx(session: Session, year: int) -> bytes:
    return workbook_bytes(attendance_workbook(session, year))


def attendance_workbook(session: Session, year: int):
    wb = new_workbook(_("签到记录"))
    ws = wb.active
    append_row(ws, [_(h) for h in ("姓名", "马甲编号", "活动", "点位", "签到", "签退", "状态", "来源", "计入（分钟）", "核对", "标记")])
    rows = session.execute(select(Attendance, Volunteer.name, Volunteer.vest_no, Event.name, PatrolPoint.name)
                           .join(Volunteer, Volunteer.id == Attendance.volunteer_id)
                           .outerjoin(Event, Event.id == Attendance.event_id)
                           .outerjoin(PatrolPoint, PatrolPoint.id == Attendance.point_id)
                           .where(Attendance.work_date.between(*year_dates(session, year)))
                           .order_by(Attendance.check_in_at))
    for a, name, vest, event, point in rows:
        append_row(ws, [name, vest or "", event or "", point or "",
                   a.check_in_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                   a.check_out_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if a.check_out_at else "",
                   a.status, a.source, a.credited_minutes, a.review_status, a.flags])
    adjustments = session.execute(select(HourAdjustment, Volunteer.name).join(Volunteer, Volunteer.id == HourAdjustment.volunteer_id)
                                  .where(HourAdjustment.work_date.between(*year_dates(session, year))))
    ws2 = wb.create_sheet(_("人工调整"))
    append_row(ws2, [_(h) for h in ("姓名", "日期", "分钟", "原因", "登记时间")])
    for adj, name in adjustments:
        append_row(ws2, [name, adj.work_date, adj.minutes, adj.reason,
                         adj.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")])
    return wb


def expenditure_xlsx(session: Session, year: int) -> bytes:
    return workbook_bytes(expenditure_workbook(session, year))


def expenditure_workbook(session: Session, year: int):
    wb = new_workbook(_("支出明细"))
    ws = wb.active
    append_row(ws, [_(h) for h in ("日期", "预算科目", "事项", "收款方", "凭证号", "金额（元）")])
    for e in session.scalars(select(Expenditure).where(Expenditure.year == year).order_by(Expenditure.spent_on)):
        append_row(ws, [e.spent_on, _(LINE_NAMES.get(e.line, e.line)), e.description, e.payee or "", e.voucher_no or "",
                   float(e.amount)])
    return wb
