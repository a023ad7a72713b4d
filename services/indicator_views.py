"""The indicators as a coordinator reads them: charts whose colours agree with the cards, and
drill-down tables (sortable, filterable by team, exportable) instead of raw evidence.

A chart bar is green only when it meets its target, as the card's status is (87.6 % against
≥ 90 % is red, not green); buckets and weeks come in their natural order with readable labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.volunteer import Volunteer
from services.clock import SHANGHAI
from services.errors import DomainError
from services.i18n import _, in_programme_language
from services.phrases import localized
from services.indicators import GREEN, PLUMBING_JOBS, IndicatorReport, active_volunteer_ids, hours_by_volunteer
from services.hours import floor_hours
from services.programme import programme_year
from services.programme_year import year_dates

OK, SHORT, NEUTRAL = "#1a7f37", "#c62828", "#0b61a4"
STATUS_COLOURS = {"green": OK, "amber": "#b7791f", "red": SHORT}


def text_width(text: str, size: float = 15) -> float:
    """Roughly how wide `text` is drawn at `size` px: a Chinese character is square, Latin letters
    and digits about 0.57 of it. Enough to give an SVG chart's labels the room they need."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.57 for ch in text)


def fit_text(text: str, width: float, size: float = 15) -> str:
    """`text` cut with "…" to fit `width` (the chart keeps the whole text in the bar's tooltip)."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str
    text: str  # the value as written on the bar ("87.6%", "12 人")


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    target: float | None = None
    target_label: str = ""
    unit: str = ""

    # The SVG's own units. It scales to the card: about 0.73 of a unit per pixel in a 360 px phone's
    # card, and at most 1.1 on a wide screen (`.hchart` max-width), so text of FONT units is drawn at
    # about 14 px on a phone and 21 px at most (15 units were 11 px on a phone and 26 on a desktop).
    WIDTH = 420
    FONT = 19
    ROW = 38           # a bar's row: the text and a little air
    MAX_LABEL = 190    # a longer label (a survey round's name) is cut with "…"

    @property
    def label_width(self) -> float:
        """Room for the longest label (week labels, "0–3 h", a round's name), so none is cut at the edge."""
        return min(self.MAX_LABEL, max([text_width(b.label, self.FONT) for b in self.bars] + [40])) + 10

    @property
    def value_width(self) -> float:
        """Room after the longest bar for its value ("182 people" in bold)."""
        return max([text_width(b.text, self.FONT) * 1.08 for b in self.bars] + [30]) + 8

    def short_label(self, bar: Bar) -> str:
        return fit_text(bar.label, self.MAX_LABEL, self.FONT)


def meets(value: float, target: float, *, at_most: bool = False) -> bool:
    return value <= target if at_most else value >= target


def bar_colour(value: float, target: float | None, *, at_most: bool = False) -> str:
    """Green only for a bar that meets the target; without a target, the neutral colour."""
    if target is None:
        return NEUTRAL
    return OK if meets(value, target, at_most=at_most) else SHORT


def week_label(iso_week: str) -> str:
    """"2026-W47" → "11月16日–22日" (Monday to Sunday; the month repeated when it changes)."""
    year, week = iso_week.split("-W")
    monday = date.fromisocalendar(int(year), int(week), 1)
    sunday = date.fromisocalendar(int(year), int(week), 7)
    if monday.month == sunday.month:
        return _("%(m)d月%(a)d日–%(b)d日", m=monday.month, a=monday.day, b=sunday.day)
    return _("%(m)d月%(a)d日–%(n)d月%(b)d日", m=monday.month, a=monday.day, n=sunday.month, b=sunday.day)


def histogram_buckets(target_hours: float) -> list[tuple[str, float, float]]:
    """(label, from, to) in bucket order; the bucket edge at the target, so colours follow it."""
    t = f"{target_hours:g}"
    return [("0", 0, 0), ("0–3", 0, 3), (f"3–{t}", 3, target_hours), (f"{t}–12", target_hours, 12),
            ("12+", 12, float("inf"))]


def weekly_chart(report: IndicatorReport, weeks: int = 12) -> Chart:
    return Chart([Bar(week_label(k), v, NEUTRAL, f"{v:g} h") for k, v in report.weekly_hours[-weeks:]], unit=" h")


def histogram_chart(report: IndicatorReport) -> Chart:
    """People per hours bucket, in bucket order (0, 0–3, 3–6, 6–12, 12+); the buckets under the
    year's hours target are red, the others green."""
    target = float(report.row(6).evidence.get("target_hours") or _target_from_text(report.row(6).target))
    counts = list(report.hours_histogram.items())
    bars = []
    for (label, low, _high), (_key, n) in zip(histogram_buckets(target), counts):
        bars.append(Bar(label + " h", n, OK if low >= target else SHORT, _("%(n)d 人", n=n)))
    return Chart(bars, unit=_("人"))


def satisfaction_chart(report: IndicatorReport) -> Chart:
    target = _target_from_text(report.row(14).target)
    bars = [Bar(name, round(rate * 100, 1), bar_colour(rate * 100, target), f"{rate * 100:.1f}%")
            for name, rate, _n in report.satisfaction_by_round]
    return Chart(bars, target, _("目标 ≥%(t)s%%", t=f"{target:g}"), "%")


def _target_from_text(target: str) -> float:
    digits = "".join(ch for ch in target if ch.isdigit() or ch == ".")
    return float(digits) if digits else 0.0


# --- drill-downs -----------------------------------------------------------------------------------

@dataclass
class Drilldown:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    volunteer_ids: list[int | None]
    teams: list[str]
    summary: list[str] = field(default_factory=list)        # what is missing, in words
    by_team: list[tuple[str, int, int]] = field(default_factory=list)  # team, short, active
    remindable: bool = False
    team_column: int | None = 1   # None: the rows are records, not people, and have no team
    unit: str = ""                # what a row is counted in ("人", "笔", "批")


def _volunteers(session: Session, ids: list[int]) -> dict[int, Any]:
    """Name, team, phone and joining date of `ids` as plain rows (not ORM objects: indicator 4 at
    district scale is 50,000 people); a long list reads the whole roster once instead of in
    chunks of IN (…)."""
    cols = select(Volunteer.id, Volunteer.name, Volunteer.team, Volunteer.phone, Volunteer.joined_on)
    found: dict[int, Any] = {}
    if len(ids) > 2000:
        wanted = set(ids)
        for v in session.execute(cols):
            if v.id in wanted:
                found[v.id] = v
        return found
    for start in range(0, len(ids), 900):
        for v in session.execute(cols.where(Volunteer.id.in_(ids[start:start + 900]))):
            found[v.id] = v
    return found


def _active_by_team(session: Session, as_of: date) -> dict[str, int]:
    """Active volunteers per team (no team: ""), counted in the database."""
    from sqlalchemy import func, or_

    team = func.coalesce(Volunteer.team, "")
    return dict(session.execute(select(team, func.count(Volunteer.id)).where(
        Volunteer.joined_on <= as_of, or_(Volunteer.withdrawn_on.is_(None), Volunteer.withdrawn_on > as_of))
        .group_by(team)).all())


DRILL_PAGE_SIZE = 100


@dataclass(frozen=True)
class DrilldownPage:
    """The rows of one page of a drill-down (after its team filter and sort), with the total."""

    rows: list[list[Any]]
    volunteer_ids: list[int | None]
    total: int
    page: int
    pages: int
    per_page: int

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 when there are none)."""
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def drilldown_page(dd: "Drilldown", page: int, *, per_page: int = DRILL_PAGE_SIZE) -> DrilldownPage:
    """One page of a drill-down table: indicator 4 lists every active volunteer (50,000 rows and
    12 MB of HTML at district scale). A page past the end shows the last; the export still has all."""
    total = len(dd.rows)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    lo, hi = (page - 1) * per_page, page * per_page
    return DrilldownPage(dd.rows[lo:hi], dd.volunteer_ids[lo:hi], total, page, pages, per_page)


def drilldown(session: Session, report: IndicatorReport, number: int, *, team: str | None = None,
              sort: int | None = None, descending: bool = False) -> Drilldown:
    """The people (or records) behind indicator `number`, as a table: names, team, phone and the
    figures that make the number; `team` filters, `sort` is a column index."""
    row = report.row(number)
    ev = row.evidence or {}
    name, team_col, phone = _("姓名"), _("居委"), _("手机")
    start, end = year_dates(session, report.year)
    if number == 6:
        target = float(programme_year(session, report.year).target_hours)
        minutes = hours_by_volunteer(session, start, end)
        active = active_volunteer_ids(session, report.as_of)
        below = [(vid, minutes.get(vid, 0) / 60.0) for vid in active if minutes.get(vid, 0) / 60.0 < target]
        people = _volunteers(session, [vid for vid, _h in below])   # only those listed, not the roster
        data = [(vid, [people[vid].name, people[vid].team or "", people[vid].phone, floor_hours(minutes.get(vid, 0)),
                       round(target - floor_hours(minutes.get(vid, 0)), 1)]) for vid, _h in below]
        dd = Drilldown(_("未达到 %(t)s 小时的志愿者", t=f"{target:g}"),
                       [name, team_col, phone, _("已计时长（小时）"), _("还差（小时）")], [], [], [], remindable=True)
        short_by_team: dict[str, int] = {}
        for vid, _h in below:
            short_by_team[people[vid].team or ""] = short_by_team.get(people[vid].team or "", 0) + 1
        on_roll = _active_by_team(session, report.as_of) if short_by_team else {}
        dd.by_team = sorted(((t, n, on_roll.get(t, 0)) for t, n in short_by_team.items()), key=lambda x: (-x[1], x[0]))
    elif number in (4, 9, 10):
        if number == 4:
            ids = active_volunteer_ids(session, report.as_of)
            extra_cols = [_("加入日期")]
            people = _volunteers(session, ids)
            data = [(vid, [people[vid].name, people[vid].team or "", people[vid].phone,
                           people[vid].joined_on.isoformat() if people[vid].joined_on else ""]) for vid in ids]
            title = _("在册志愿者")
            target_n = programme_year(session, report.year).target_volunteers
            diff = len(ids) - target_n
            summary = [_("在册 %(n)d 人，目标 %(t)d 人，%(d)s", n=len(ids), t=target_n,
                         d=_("超出 %(x)d 人", x=diff) if diff > 0 else _("还差 %(x)d 人", x=-diff) if diff < 0 else _("正好达到"))]
        elif number == 9:
            items = ev.get("late", [])
            people = _volunteers(session, [i["volunteer_id"] for i in items])
            extra_cols = [_("原因")]
            data = [(i["volunteer_id"], [people[i["volunteer_id"]].name, people[i["volunteer_id"]].team or "",
                                         people[i["volunteer_id"]].phone, _("装备未在截止日期前或首次巡逻前发放")])
                    for i in items if i["volunteer_id"] in people]
            title = _("装备未按时发放的志愿者")
            summary = [_("%(n)d 名志愿者装备未按时发放", n=ev.get("late_count", 0))]
        else:
            items = ev.get("late", [])
            people = _volunteers(session, [i["volunteer_id"] for i in items])
            extra_cols = [_("原因"), _("日期")]
            data = [(i["volunteer_id"], [people[i["volunteer_id"]].name, people[i["volunteer_id"]].team or "",
                                         people[i["volunteer_id"]].phone, localized(i["reason_text"]), i["date"] or ""])
                    for i in items if i["volunteer_id"] in people]
            title = _("未按时投保的志愿者")
            summary = [_("%(n)d 名志愿者未按时投保", n=ev.get("late_count", 0))]
        dd = Drilldown(title, [name, team_col, phone] + extra_cols, [], [], [], summary=summary)
    elif 1 <= number <= 14:
        dd, data = _ledger(session, report, number, start, end)
    else:
        raise DomainError("no_table", _("该指标没有明细"))
    dd.unit = dd.unit or _("人")
    tc = dd.team_column
    if tc is not None:
        dd.teams = sorted({r[tc] for _v, r in data if r[tc]})
        if team:
            data = [(v, r) for v, r in data if r[tc] == team]
    if number == 6:
        short = round(sum(r[4] for _v, r in data), 1)
        dd.summary = [(f"{team}：" if team else "") + _("%(n)d 名志愿者未达到 %(t)s 小时，共差 %(h)s 小时", n=len(data),
                                                       t=f"{target:g}", h=f"{short:g}")]
    if sort is not None and 0 <= sort < len(dd.columns):
        data.sort(key=lambda item: _sort_key(item[1][sort]), reverse=descending)
    dd.rows = [r for _v, r in data]
    dd.volunteer_ids = [v for v, _r in data]
    if row.status == GREEN and number != 4:
        dd.summary = dd.summary or [_("已达成")]
    return dd


def roster_drilldown_page(session: Session, report: IndicatorReport, *, team: str | None = None,
                          sort: int | None = None, descending: bool = False, page: int = 1,
                          per_page: int = DRILL_PAGE_SIZE) -> tuple[Drilldown, DrilldownPage]:
    """Indicator 4's page straight from the database: the roster is every active volunteer (50,000
    at district scale), so the filter, the sort and the page are done in SQL instead of building
    every row to show a hundred. Same rows, order and summary as `drilldown(…, 4)` (which the
    .xlsx export still uses): code-point order as Python's, blanks after the rest (before, when
    descending, as a reversed sort puts them), ties in roster order."""
    from sqlalchemy import and_, case, func, or_

    as_of = report.as_of
    active = and_(Volunteer.joined_on <= as_of, or_(Volunteer.withdrawn_on.is_(None), Volunteer.withdrawn_on > as_of))
    binary = "C" if session.get_bind().dialect.name == "postgresql" else "BINARY"
    n_active = session.scalar(select(func.count(Volunteer.id)).where(active)) or 0
    teams = sorted(t for t in session.scalars(select(Volunteer.team).where(active, Volunteer.team.is_not(None),
                                                                           Volunteer.team != "").distinct()))
    where = [active] + ([Volunteer.team == team] if team else [])
    total = session.scalar(select(func.count(Volunteer.id)).where(*where)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    columns = {0: (Volunteer.name.collate(binary), None), 1: (func.coalesce(Volunteer.team, "").collate(binary), Volunteer.team),
               2: (Volunteer.phone.collate(binary), None), 3: (Volunteer.joined_on, Volunteer.joined_on)}
    order: list[Any] = []
    if sort in columns:
        col, blankable = columns[sort]
        if blankable is not None:
            blank = case((or_(blankable.is_(None), blankable == "") if sort == 1 else blankable.is_(None), 1), else_=0)
            order.append(blank.desc() if descending else blank.asc())
        order.append(col.desc() if descending else col.asc())
    order.append(Volunteer.id.asc())
    found = session.execute(select(Volunteer.id, Volunteer.name, Volunteer.team, Volunteer.phone, Volunteer.joined_on)
                            .where(*where).order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    rows = [[v.name, v.team or "", v.phone, v.joined_on.isoformat() if v.joined_on else ""] for v in found]
    target_n = programme_year(session, report.year).target_volunteers
    diff = n_active - target_n
    dd = Drilldown(_("在册志愿者"), [_("姓名"), _("居委"), _("手机"), _("加入日期")], [], [], teams,
                   summary=[_("在册 %(n)d 人，目标 %(t)d 人，%(d)s", n=n_active, t=target_n,
                              d=_("超出 %(x)d 人", x=diff) if diff > 0 else _("还差 %(x)d 人", x=-diff) if diff < 0
                              else _("正好达到"))], unit=_("人"))
    return dd, DrilldownPage(rows, [v.id for v in found], total, page, pages, per_page)


def _sort_key(value: Any) -> tuple:
    """Blanks last, numbers by value, everything else by its text, so a mixed column still sorts."""
    if value is None or value == "":
        return (2, 0, "")
    if isinstance(value, (int, float, Decimal)):
        return (0, float(value), "")
    return (1, 0, str(value))


def _local(at: datetime | None) -> str:
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _ledger(session: Session, report: IndicatorReport, number: int, start: date,
            end: date) -> tuple[Drilldown, list[tuple[int | None, list[Any]]]]:
    """The records behind the indicators that are not lists of people: ledgers, deliveries,
    attendances to review, survey and month figures; each row with the figures that make the number."""
    from models.attendance import REVIEW_APPROVED, REVIEW_NONE, Attendance
    from models.point import PatrolPoint
    from models.programme import (LINE_WORK_FUND, Complaint, EquipmentDelivery, Expenditure, JobRun,
                                  ProgrammeDocument)

    row = report.row(number)
    ev = row.evidence or {}
    data: list[tuple[int | None, list[Any]]] = []
    summary: list[str] = []
    if number == 1:
        entries = session.scalars(select(Expenditure).where(Expenditure.year == report.year,
                                                            Expenditure.line == LINE_WORK_FUND)
                                  .order_by(Expenditure.spent_on, Expenditure.id)).all()
        data = [(None, [e.spent_on.isoformat(), e.description, e.payee or "", e.voucher_no or "", float(e.amount)])
                for e in entries]
        total = sum(r[4] for _v, r in data)
        limit = _target_from_text(row.target)
        summary = [_("合计 %(t).2f 元，上限 %(l)s 元，%(d)s", t=total, l=f"{limit:g}",
                     d=_("超出 %(x).2f 元", x=total - limit) if total > limit else _("余 %(x).2f 元", x=limit - total))]
        dd = Drilldown(_("工作经费支出"), [_("日期"), _("事项"), _("收款方"), _("凭证号"), _("金额（元）")], [], [], [],
                       unit=_("笔"))
    elif number == 2:
        data = [(None, [p["policy_no"], f"{p['cover_start']} – {p['cover_end']}", p["premium_per_person"], p["insured"],
                        p["share"], p["charged"]]) for p in ev.get("policies", [])]
        summary = [_("每张保单的保费按保障期落在本年度的天数分摊：保费 × 被保险人数 × 本年度天数 ÷ 保障天数。"),
                   _("合计 %(t).2f 元 ÷ %(n)d 人", t=ev.get("premiums", 0), n=ev.get("insured", 0))]
        dd = Drilldown(_("保费分摊"), [_("保单号"), _("保障期"), _("保费/人"), _("被保险人"), _("本年度天数/保障天数"),
                                   _("计入本年度（元）")], [], [], [], unit=_("张"))
    elif number in (3, 5, 8):
        deliveries = session.scalars(select(EquipmentDelivery).where(EquipmentDelivery.delivered_on.between(start, end))
                                     .order_by(EquipmentDelivery.delivered_on, EquipmentDelivery.id)).all()
        data = [(None, [d.delivered_on.isoformat(), d.supplier, d.sets, float(d.unit_cost),
                        round(d.sets * float(d.unit_cost), 2), d.passed_sets, d.sets - d.passed_sets,
                        d.inspection_note or ""]) for d in deliveries]
        sets = sum(r[2] for _v, r in data)
        passed = sum(r[5] for _v, r in data)
        if number == 3:
            equipped = ev.get("equipped", 0)
            total = ev.get("total_cost", 0.0)
            summary = [_("装备总成本 %(t).2f 元 ÷ 已发放装备 %(n)d 人 = %(p).2f 元/人（上限 %(l)s 元/人）", t=total, n=equipped,
                         p=total / equipped if equipped else 0.0, l=f"{_target_from_text(row.target):g}")
                       if equipped else _("尚无发放记录，无法计算人均成本")]
        elif number == 5:
            target = int(_target_from_text(row.target))
            summary = [_("已到货 %(s)d 套，目标 %(t)d 套，%(d)s", s=sets, t=target,
                         d=_("还差 %(x)d 套", x=target - sets) if sets < target else _("已达到"))]
        else:
            summary = [_("验收合格 %(p)d 套 / 到货 %(s)d 套，不合格 %(x)d 套", p=passed, s=sets, x=sets - passed)
                       if sets else _("尚无到货记录")]
        dd = Drilldown(_("装备到货与验收"), [_("到货日期"), _("供应商"), _("套数"), _("单价（元）"), _("金额（元）"),
                                      _("验收合格（套）"), _("不合格（套）"), _("验收说明")], [], [], [], unit=_("批"))
    elif number == 7:
        A = Attendance
        rows = session.execute(select(A.work_date, A.check_in_at, A.check_out_at, A.status, A.flags, A.review_status,
                                      Volunteer.id, Volunteer.name, Volunteer.team, Volunteer.phone, PatrolPoint.name)
                               .join(Volunteer, Volunteer.id == A.volunteer_id)
                               .outerjoin(PatrolPoint, PatrolPoint.id == A.point_id)
                               .where(A.work_date.between(start, end), A.status != "open",
                                      ~((A.review_status == REVIEW_APPROVED)
                                        | ((A.status == "closed") & (A.review_status == REVIEW_NONE))))
                               .order_by(A.work_date, A.id)).all()
        review = {"none": _("未审核"), "flagged": _("待核对"), "approved": _("已通过"), "rejected": _("已驳回")}
        status = {"closed": _("正常签退"), "auto_closed": _("自动结束")}
        data = [(vid, [name, team or "", phone, work_date.isoformat(), point or "", _local(c_in), _local(c_out),
                       status.get(st, st), flags or "", review.get(rs, rs)])
                for work_date, c_in, c_out, st, flags, rs, vid, name, team, phone, point in rows]
        summary = [_("正常 %(n)d 条 / 共 %(t)d 条，%(x)d 条未正常结束，其中待核对 %(f)d 条", n=ev.get("normal", 0),
                     t=ev.get("total", 0), x=len(data), f=ev.get("flagged", 0))]
        dd = Drilldown(_("未正常结束的签到记录"), [_("姓名"), _("居委"), _("手机"), _("日期"), _("点位"), _("签到时间"),
                                         _("签退时间"), _("结束方式"), _("标记"), _("审核状态")], [], [], [], unit=_("条"))
    elif number == 11:
        complaints = session.execute(select(Complaint, Volunteer.name).outerjoin(Volunteer, Volunteer.id == Complaint.volunteer_id)
                                     .where(Complaint.received_on.between(start, end))
                                     .order_by(Complaint.received_on, Complaint.id)).all()
        data = [(None, [c.received_on.isoformat(), c.source, name or "", c.description, c.resolution or "",
                        _("未办结") if c.status == "open" else _("已办结")]) for c, name in complaints]
        summary = [_("共 %(n)d 件，未办结 %(o)d 件", n=ev.get("complaints", 0), o=ev.get("open", 0))]
        dd = Drilldown(_("投诉登记"), [_("日期"), _("来源"), _("涉及志愿者"), _("内容"), _("处理结果"), _("状态")], [], [], [],
                       unit=_("件"))
    elif number == 12:
        data = [(None, [_("%(m)s月", m=m), h]) for m, h in (ev.get("hours_by_month") or {}).items()]
        summary = [_("重大节点：") + "、".join(ev["events"])] if ev.get("events") else []
        summary.append(_("覆盖点位 %(n)d 个", n=ev.get("points_covered", 0)))
        dd = Drilldown(_("每月巡逻时长"), [_("月份"), _("时长（小时）")], [], [], [], unit=_("个月"))
    elif number == 13:
        kinds = {"rule": _("制度"), "plan": _("方案"), "meeting": _("会议纪要"), "other": _("其他")}
        docs = session.scalars(select(ProgrammeDocument).where(ProgrammeDocument.year == report.year)
                               .order_by(ProgrammeDocument.created_at)).all()
        data = [(None, [_("制度文件"), kinds.get(d.kind, d.kind), d.title, _local(d.created_at)]) for d in docs]
        runs = session.scalars(select(JobRun).where(JobRun.job.not_in(PLUMBING_JOBS))
                               .order_by(JobRun.started_at.desc()).limit(50)).all()
        data += [(None, [_("自动任务"), r.job, r.outcome, _local(r.started_at)]) for r in runs]
        data += [(None, [_("已送达消息"), k, n, ""]) for k, n in (ev.get("messages_sent") or {}).items()]
        summary = [_("制度文件 %(d)d 份，最近 %(r)d 次自动任务", d=len(docs), r=len(runs))]
        dd = Drilldown(_("制度文件、自动任务与提醒"), [_("类别"), _("项目"), _("内容或结果"), _("时间")], [], [], [],
                       unit=_("项"))
    else:  # 14
        by_score = ev.get("by_score") or {}
        responses = sum(by_score.values()) or 0
        data = [(None, [str(k), n, round(n / responses * 100, 1) if responses else 0.0]) for k, n in by_score.items()]
        summary = [_("调查轮次 %(r)s：回收 %(n)d 份 / 应答 %(e)d 人", r=ev["round"], n=ev.get("responses", 0),
                     e=ev.get("eligible", 0))] if ev.get("round") else [_("尚未开展调查")]
        dd = Drilldown(_("评分分布"), [_("评分"), _("人数"), _("占比（百分比）")], [], [], [], unit=_("档"))
    dd.summary = summary
    dd.team_column = 1 if number == 7 else None
    return dd, data


PEOPLE_DRILLDOWNS = (4, 6, 7, 9, 10)
ALL_DRILLDOWNS = tuple(range(1, 15))


def drilldown_table(dd: Drilldown, *, title: str):
    """The drill-down as the page shows it, for the streamed writer (services/spreadsheet.py)."""
    from services.spreadsheet import Table

    return Table(title[:31], dd.columns, dd.rows, widths=(12, 14, 14, 16, 16, 28, 18, 18, 18, 12)[:max(1, len(dd.columns))])


def evidence_lines(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """The scalar figures of an indicator's evidence, labelled in words (lists are tables elsewhere)."""
    labels = {"entries": _("支出笔数"), "insured": _("投保人数"), "premiums": _("计入本年度的保费（元）"),
              "total_cost": _("装备总成本（元）"), "equipped": _("已发放装备人数"), "deliveries": _("到货批次"),
              "mean": _("人均时长（小时）"), "share_at_target": _("达标人数占比"), "below_count": _("未达标人数"),
              "normal": _("正常记录"), "total": _("记录总数"), "flagged": _("待核对记录"), "late_count": _("未按时人数"),
              "uninsured_checkins": _("未投保签到人数"), "refused_checkins": _("未投保被拒绝的签到"),
              "complaints": _("投诉件数"), "open": _("未办结"), "points_covered": _("覆盖点位数"),
              "round": _("调查轮次"), "responses": _("回收份数"), "eligible": _("应答人数"), "response_rate": _("回收率"),
              "roster_updated": _("名册最近更新"), "rule": _("口径"), "target_hours": _("目标时长（小时）")}
    out = []
    for key, value in ev.items():
        if isinstance(value, (list, dict)) or key not in labels:
            continue
        if key in ("share_at_target", "response_rate") and isinstance(value, (int, float)):
            value = f"{value * 100:.1f}%"
        if key == "rule":
            value = _("每人均达标") if value == "every" else _("人均")
        out.append((labels[key], "—" if value is None else str(value)))
    return out


def remind_below_target(session: Session, report: IndicatorReport, *, team: str | None, nonce: str,
                        created_by_user_id: int | None, clock) -> tuple[int, int]:
    """Indicator 6's "remind them": one notice to the volunteers under the hours target (of one
    team, or all), deduplicated by the form's nonce so a double click sends once.
    Returns (message id, recipients)."""
    from services.messaging import post_message, sender_line
    from services.outbox import Recipient

    if not nonce or len(nonce) > 64:
        raise DomainError("nonce_required", _("缺少表单标识，请刷新页面后重试"))
    dd = drilldown(session, report, 6, team=team or None)
    ids = [v for v in dd.volunteer_ids if v is not None]
    if not ids:
        raise DomainError("no_recipients", _("没有需要提醒的志愿者"))
    with in_programme_language():   # to volunteers: in Chinese, as the page showed it before sending
        body = hours_reminder_text(report) + "\n\n—— " + sender_line(session, created_by_user_id)
        result = post_message(session, kind="notice", title=_("服务时长提醒"), body=body,
                              recipients=[Recipient(volunteer_id=v) for v in ids], dedupe_key=f"hours-remind:{nonce}",
                              audience=_("未达到时长目标的志愿者") + (f"（{team}）" if team else ""),
                              created_by_user_id=created_by_user_id, clock=clock)
    return result.message_id, result.recipients


def hours_reminder_text(report: IndicatorReport) -> str:
    """What the volunteers under the hours target are sent (shown to the coordinator before it
    goes, as it will be sent: in Chinese)."""
    with in_programme_language():
        return _("本年度志愿服务时长目标为每人 %(t)s，您目前还未达到。请在“我的班次”中报名近期的巡逻班次，谢谢！",
                 t=localized(report.row(6).target).lstrip("≥ "))


def gap_text(row) -> str:
    """What is still missing for a row not met, in words, for its card ("还差 12 人", "312 人未达标")."""
    if row.status == GREEN:
        return ""
    ev = row.evidence or {}
    target = _target_from_text(row.target)
    if row.number == 4 and row.value is not None and row.value < target:
        return _("还差 %(n)d 人", n=int(target - row.value))
    if row.number == 5 and row.value is not None and row.value < target:
        return _("还差 %(n)d 套", n=int(target - row.value))
    if row.number == 6 and ev.get("below_count"):
        return _("%(n)d 人未达到目标时长", n=ev["below_count"])
    if row.number == 7 and ev.get("flagged"):
        return _("%(n)d 条记录待核对", n=ev["flagged"])
    if row.number in (9, 10) and ev.get("late_count"):
        return _("%(n)d 人未按时", n=ev["late_count"])
    if row.number == 14 and row.value is not None and row.value * 100 < target:
        return _("差 %(d)s 个百分点", d=f"{target - row.value * 100:.1f}")
    if row.number in (12, 13):
        return _("待评估")
    return ""
