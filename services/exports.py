"""Spreadsheets a finance office and a volunteer registry accept: the year-end self-evaluation
table in the project description's layout, the hours roster, attendance and expenditure lists.

The lists are `Table`s whose rows are generators over statements read in batches (`yield_per`),
written by the streamed writers of services/spreadsheet.py: a district's year (500,000 patrols)
never sits in memory, neither as ORM objects nor as workbook cells. Each list has a cheap
`*_count` (COUNT queries) so the web can decide whether to build it in the request or in the
background (services/export_jobs.py). The self-evaluation table is 20 laid-out rows and stays an
ordinary workbook."""
from __future__ import annotations

from datetime import date

from typing import Iterator

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from models.attendance import (REVIEW_REJECTED, SOURCE_IMPORT, SOURCE_PROXY, SOURCE_SCAN, Attendance,
                               AttendanceCredit, HourAdjustment)
from models.event import Event
from models.point import PatrolPoint
from models.programme import Expenditure
from models.volunteer import Volunteer
from services.clock import SHANGHAI
from services.hours import HoursSummary
from services.i18n import _
from services.indicators import IndicatorReport
from services.programme import LINE_NAMES, programme_year
from services.programme_year import year_dates
from services.self_evaluation import Evaluation, score_rows
from services.spreadsheet import Table, append_row, new_workbook, table_bytes, workbook_bytes

BATCH = 2000  # rows fetched at a time by the streamed exports
STATUS_WORDS = {"green": "已达成", "amber": "进行中（按进度达标）", "red": "未达成"}
FILLS = {"green": "C6EFCE", "amber": "FFEB9C", "red": "FFC7CE"}


def self_evaluation_xlsx(report: IndicatorReport, evaluation: Evaluation | None = None, *,
                         office: str = "浦锦街道平安办") -> bytes:
    return workbook_bytes(self_evaluation_workbook(report, evaluation, office=office))


SELF_EVALUATION_HEADER = ("序号", "一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "完成情况", "分值", "得分",
                          "偏差原因分析及改进措施")
SELF_EVALUATION_WIDTHS = (5, 10, 12, 22, 13, 26, 11, 6, 6, 40)


def self_evaluation_workbook(report: IndicatorReport, evaluation: Evaluation | None = None, *,
                             office: str = "浦锦街道平安办"):
    """The 财政绩效自评表: budget execution, the 14 indicators with 分值/得分, the total and notes.

    Targets such as "=500 人" or "=100%" are texts of the project description: `append_row` writes
    them as text cells, never formulas (a spreadsheet would show Err:509 or 1). Laid out to print:
    landscape A4, one page wide, borders, the header row repeated, the title merged across.
    Without an `evaluation` (no session at hand) the default weights are used and budget execution
    is left blank."""
    from openpyxl.styles import Alignment, PatternFill  # imported here: openpyxl is 18 MB the bot and sender never need
    if evaluation is None:
        evaluation = Evaluation(None, score_rows(report))
    ncols = len(SELF_EVALUATION_HEADER)
    wb = new_workbook(_("绩效自评"))
    ws = wb.active
    append_row(ws, [_("%(y)d 年平安志愿者项目财政绩效自评表", y=report.year)])
    append_row(ws, [_("填报单位：%(o)s；数据截至 %(d)s%(ytd)s", o=office, d=report.as_of.isoformat(),
                 ytd=_("（年度进行中）") if report.year_to_date else "")])
    append_row(ws, [_(h) for h in SELF_EVALUATION_HEADER])
    header_row = ws.max_row
    first_body = header_row + 1
    b = evaluation.budget
    if b is not None:
        append_row(ws, ["", _("预算执行"), _("预算执行率"),
                        _("年初预算数 %(p)s 元，全年执行数 %(s)s 元", p=f"{b.planned:,.2f}", s=f"{b.spent:,.2f}"),
                        "100%", f"{b.rate * 100:.1f}%", STATUS_WORDS["green" if b.rate >= 1 else "red"],
                        _points(b.points), _points(b.score),
                        "" if b.rate >= 1 else _("执行率 %(r)s，按执行率计分", r=f"{b.rate * 100:.1f}%")])
        ws.cell(row=ws.max_row, column=7).fill = PatternFill("solid", fgColor=FILLS["green" if b.rate >= 1 else "red"])
    for scored in evaluation.rows:
        row = scored.row
        append_row(ws, [row.number, row.level1, row.level2, row.name, row.target, scored.actual_text,
                        STATUS_WORDS[row.status], _points(scored.points),
                        _("待评分") if scored.score is None else _points(scored.score), scored.deviation])
        ws.cell(row=ws.max_row, column=7).fill = PatternFill("solid", fgColor=FILLS[row.status])
    total_points = sum(r.points for r in evaluation.rows) + (b.points if b else 0)
    append_row(ws, [_("总分")] + [""] * 6 + [_points(total_points), _points(evaluation.total),
                    _("指标 %(n)s 尚未评分", n="、".join(str(n) for n in evaluation.unscored)) if evaluation.unscored else ""])
    total_row = ws.max_row
    ws.merge_cells(start_row=total_row, start_column=1, end_row=total_row, end_column=7)
    last_body = total_row
    notes = [_("说明："),
             _("1. 评分规则：达成的指标得满分；未达成的定量指标按完成比例得分（“≤”类指标按指标值÷实际值，其余按实际值÷指标值），"
               "不超过该项分值；定性指标（12、13）按评估意见评分；预算执行按执行率计分。"),
             _("2. “=”类指标的判定口径：实际值不低于指标值即为达成（人数按在册且未退出的志愿者计，比率按满足条件的人数或记录数计），"
               "超出或不足部分在实际完成值中注明。"),
             _("3. 绿色为已达成，黄色为年度进行中、按进度达标，红色为未达成；偏差原因见最后一列。")]
    for text in notes:
        append_row(ws, [text])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=ncols)
        ws.cell(row=ws.max_row, column=1).alignment = Alignment(wrap_text=True, vertical="top")
        ws.row_dimensions[ws.max_row].height = 30 if len(text) > 60 else 16
    _print_layout(ws, ncols, header_row, first_body, last_body)
    return wb


def _points(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 2)


def _lines(value, width: float) -> int:
    """Printed lines of a wrapped cell: LibreOffice keeps the file's row height, so it is set here
    (a CJK character is about two width units)."""
    text = "" if value is None else str(value)
    units = sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
    return max(1, -(-units // max(1, int(width) - 1)))


def _print_layout(ws, ncols: int, header_row: int, first_body: int, last_body: int) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter  # imported here: openpyxl is 18 MB the bot and sender never need
    thin = Side(style="thin", color="000000")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for col in range(1, ncols + 1):
        ws.column_dimensions[get_column_letter(col)].width = SELF_EVALUATION_WIDTHS[col - 1]
    for r in range(header_row, last_body + 1):
        for col in range(1, ncols + 1):
            cell = ws.cell(row=r, column=col)
            cell.border = border
            cell.alignment = Alignment(wrap_text=True, vertical="center",
                                       horizontal="center" if col in (1, 7, 8, 9) or r == header_row else "left")
            if r == header_row or r == last_body:
                cell.font = Font(bold=True)
                if r == header_row:
                    cell.fill = PatternFill("solid", fgColor="D9D9D9")
    for r in range(header_row, last_body + 1):
        ws.row_dimensions[r].height = 4 + 15 * max(_lines(ws.cell(row=r, column=col).value, SELF_EVALUATION_WIDTHS[col - 1])
                                               for col in range(1, ncols + 1))
    for r in (1, 2):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncols)
        ws.cell(row=r, column=1).alignment = Alignment(horizontal="center" if r == 1 else "left", vertical="center")
    ws.cell(row=1, column=1).font = Font(bold=True, size=16)
    ws.row_dimensions[1].height = 28
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5
    ws.freeze_panes = ws.cell(row=first_body, column=1)


def hours_roster_xlsx(session: Session, year: int, *, as_of: date) -> bytes:
    return table_bytes("xlsx", [hours_table(session, year, as_of=as_of)])


HOURS_HEADER = ("姓名", "所属居委", "马甲编号", "扫码核验（小时）", "历史导入（小时）", "人工登记（小时）", "合计（小时）", "是否达标")


def _active_on(as_of: date):
    """On the roster at `as_of` (as `active_volunteer_ids` counts), as a WHERE clause."""
    return and_(Volunteer.joined_on <= as_of, or_(Volunteer.withdrawn_on.is_(None), Volunteer.withdrawn_on > as_of))


def hours_count(session: Session, year: int, *, as_of: date) -> int:
    return session.scalar(select(func.count(Volunteer.id)).where(_active_on(as_of))) or 0


def hours_table(session: Session, year: int, *, as_of: date) -> Table:
    """Per volunteer: scan-verified, imported and adjusted hours in separate columns; "是否达标"
    against that year's own target (its settings row), as indicator 6 counts.

    One statement for everyone, read in batches: the roster joined to the year's credits summed
    per volunteer and source and to the adjustments summed per volunteer (two queries per
    volunteer ran past the request timeout at district size; a dict of every volunteer's summary
    held 50,000 objects). The sums are those of `hours_by_volunteer` (rejected records excluded)."""
    start, end = year_dates(session, year)
    target = float(programme_year(session, year).target_hours)
    A, C, H = Attendance.__table__, AttendanceCredit.__table__, HourAdjustment.__table__

    def by_source(source: str):
        return func.coalesce(func.sum(case((A.c.source == source, C.c.minutes), else_=0)), 0)

    credits = (select(C.c.volunteer_id.label("vid"), by_source(SOURCE_SCAN).label("scan"),
                      by_source(SOURCE_IMPORT).label("imported"), by_source(SOURCE_PROXY).label("proxy"))
               .select_from(C.join(A, A.c.id == C.c.attendance_id))
               .where(C.c.work_date.between(start, end), A.c.review_status != REVIEW_REJECTED)
               .group_by(C.c.volunteer_id).subquery())
    adjusted = (select(H.c.volunteer_id.label("vid"), func.coalesce(func.sum(H.c.minutes), 0).label("minutes"))
                .where(H.c.work_date.between(start, end)).group_by(H.c.volunteer_id).subquery())
    stmt = (select(Volunteer.name, Volunteer.team, Volunteer.vest_no, credits.c.scan, credits.c.imported,
                   credits.c.proxy, adjusted.c.minutes)
            .outerjoin(credits, credits.c.vid == Volunteer.id).outerjoin(adjusted, adjusted.c.vid == Volunteer.id)
            .where(_active_on(as_of)).order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id)
            .execution_options(yield_per=BATCH))
    yes, no = _("是"), _("否")

    def rows() -> Iterator[list]:
        with session.execute(stmt) as result:  # closed (server-side cursor too) if the export stops early
            for name, team, vest_no, scan, imported, proxy, adjustment in result:
                s = HoursSummary(int(scan or 0), int(imported or 0), int(proxy or 0) + int(adjustment or 0), target,
                                 year)
                yield [name, team or "", vest_no or "", s.verified, s.imported, s.adjusted, s.total,
                       yes if s.met else no]

    return Table(_("工时"), [_(h) for h in HOURS_HEADER], rows(), widths=(12, 14, 12, 16, 16, 16, 12, 10))


def attendance_xlsx(session: Session, year: int) -> bytes:
    return table_bytes("xlsx", attendance_tables(session, year))


ATTENDANCE_HEADER = ("姓名", "马甲编号", "活动", "点位", "签到", "签退", "状态", "来源", "计入（分钟）", "核对", "标记")


def attendance_count(session: Session, year: int) -> int:
    """Rows of both sheets (patrols and adjustments), by two COUNTs."""
    start, end = year_dates(session, year)
    return ((session.scalar(select(func.count(Attendance.id)).where(Attendance.work_date.between(start, end))) or 0)
            + (session.scalar(select(func.count(HourAdjustment.id))
                              .where(HourAdjustment.work_date.between(start, end))) or 0))


def attendance_tables(session: Session, year: int) -> list[Table]:
    """Every patrol of the programme year, from plain rows read in batches (no ORM objects), and
    the hour adjustments on a second sheet (read only once the first one is written)."""
    start, end = year_dates(session, year)
    stmt = (select(Volunteer.name, Volunteer.vest_no, Event.name, PatrolPoint.name, Attendance.check_in_at,
                   Attendance.check_out_at, Attendance.status, Attendance.source,
                   Attendance.credited_minutes, Attendance.review_status, Attendance.flags)
            .join(Volunteer, Volunteer.id == Attendance.volunteer_id)
            .outerjoin(Event, Event.id == Attendance.event_id)
            .outerjoin(PatrolPoint, PatrolPoint.id == Attendance.point_id)
            .where(Attendance.work_date.between(start, end))
            .order_by(Attendance.check_in_at, Attendance.id).execution_options(yield_per=BATCH))

    def patrols() -> Iterator[list]:
        with session.execute(stmt) as result:
            for name, vest, event, point, check_in, check_out, status, source, minutes, review, flags in result:
                yield [name, vest or "", event or "", point or "",
                       check_in.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                       check_out.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if check_out else "",
                       status, source, minutes, review, flags]

    def adjustments() -> Iterator[list]:
        with session.execute(
                select(HourAdjustment.work_date, HourAdjustment.minutes, HourAdjustment.reason, HourAdjustment.created_at,
                       Volunteer.name).join(Volunteer, Volunteer.id == HourAdjustment.volunteer_id)
                .where(HourAdjustment.work_date.between(start, end))
                .order_by(HourAdjustment.id).execution_options(yield_per=BATCH)) as result:
            for work_date, minutes, reason, created_at, name in result:
                yield [name, work_date, minutes, reason, created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")]

    return [Table(_("签到记录"), [_(h) for h in ATTENDANCE_HEADER], patrols(),
                  widths=(12, 12, 16, 16, 17, 17, 12, 8, 12, 10, 16)),
            Table(_("人工调整"), [_(h) for h in ("姓名", "日期", "分钟", "原因", "登记时间")], adjustments(),
                  widths=(12, 12, 8, 30, 17))]


def expenditure_xlsx(session: Session, year: int) -> bytes:
    return table_bytes("xlsx", [expenditure_table(session, year)])


def expenditure_count(session: Session, year: int) -> int:
    return session.scalar(select(func.count(Expenditure.id)).where(Expenditure.year == year)) or 0


def expenditure_table(session: Session, year: int) -> Table:
    stmt = (select(Expenditure.spent_on, Expenditure.line, Expenditure.description, Expenditure.payee,
                   Expenditure.voucher_no, Expenditure.amount)
            .where(Expenditure.year == year).order_by(Expenditure.spent_on, Expenditure.id)
            .execution_options(yield_per=BATCH))

    def rows() -> Iterator[list]:
        with session.execute(stmt) as result:
            for spent_on, line, description, payee, voucher_no, amount in result:
                yield [spent_on, _(LINE_NAMES.get(line, line)), description, payee or "", voucher_no or "",
                       float(amount)]

    return Table(_("支出明细"), [_(h) for h in ("日期", "预算科目", "事项", "收款方", "凭证号", "金额（元）")], rows(),
                 widths=(12, 14, 30, 20, 14, 12))
