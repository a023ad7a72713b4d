"""The indicators as a coordinator reads them: charts whose colours agree with the cards, and
drill-down tables (sortable, filterable by team, exportable) instead of raw evidence.

A chart bar is green only when it meets its target, as the card's status is (87.6 % against
≥ 90 % is red, not green); buckets and weeks come in their natural order with readable labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.volunteer import Volunteer
from services.errors import DomainError
from services.i18n import _
from services.indicators import GREEN, IndicatorReport, active_volunteer_ids, hours_by_volunteer
from services.hours import floor_hours
from services.programme import programme_year
from services.programme_year import year_dates

OK, SHORT, NEUTRAL = "#1a7f37", "#c62828", "#0b61a4"
STATUS_COLOURS = {"green": OK, "amber": "#b7791f", "red": SHORT}


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


def _volunteers(session: Session, ids: list[int]) -> dict[int, Volunteer]:
    found: dict[int, Volunteer] = {}
    for start in range(0, len(ids), 900):
        for v in session.scalars(select(Volunteer).where(Volunteer.id.in_(ids[start:start + 900]))):
            found[v.id] = v
    return found


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
        people = _volunteers(session, active)
        below = [(vid, minutes.get(vid, 0) / 60.0) for vid in active if minutes.get(vid, 0) / 60.0 < target]
        data = [(vid, [people[vid].name, people[vid].team or "", people[vid].phone, floor_hours(minutes.get(vid, 0)),
                       round(target - floor_hours(minutes.get(vid, 0)), 1)]) for vid, _h in below]
        dd = Drilldown(_("未达到 %(t)s 小时的志愿者", t=f"{target:g}"),
                       [name, team_col, phone, _("已计时长（小时）"), _("还差（小时）")], [], [], [], remindable=True)
        teams_all: dict[str, list[int]] = {}
        for vid in active:
            teams_all.setdefault(people[vid].team or "", [0, 0])
            teams_all[people[vid].team or ""][1] += 1
        for vid, _h in below:
            teams_all[people[vid].team or ""][0] += 1
        dd.by_team = sorted(((t, s, a) for t, (s, a) in teams_all.items() if s), key=lambda x: -x[1])
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
                                         people[i["volunteer_id"]].phone, i["reason_text"], i["date"] or ""])
                    for i in items if i["volunteer_id"] in people]
            title = _("未按时投保的志愿者")
            summary = [_("%(n)d 名志愿者未按时投保", n=ev.get("late_count", 0))]
        dd = Drilldown(title, [name, team_col, phone] + extra_cols, [], [], [], summary=summary)
    else:
        raise DomainError("no_table", _("该指标没有人员明细"))
    dd.teams = sorted({r[1] for _v, r in data if r[1]})
    if team:
        data = [(v, r) for v, r in data if r[1] == team]
    if number == 6:
        short = round(sum(r[4] for _v, r in data), 1)
        dd.summary = [(f"{team}：" if team else "") + _("%(n)d 名志愿者未达到 %(t)s 小时，共差 %(h)s 小时", n=len(data),
                                                       t=f"{target:g}", h=f"{short:g}")]
    if sort is not None and 0 <= sort < len(dd.columns):
        data.sort(key=lambda item: (item[1][sort] is None, item[1][sort] if item[1][sort] is not None else ""),
                  reverse=descending)
    dd.rows = [r for _v, r in data]
    dd.volunteer_ids = [v for v, _r in data]
    if row.status == GREEN and number != 4:
        dd.summary = dd.summary or [_("已达成")]
    return dd


PEOPLE_DRILLDOWNS = (4, 6, 9, 10)


def drilldown_workbook(dd: Drilldown, *, title: str):
    from services.spreadsheet import append_row, new_workbook

    wb = new_workbook(title[:31])
    ws = wb.active
    append_row(ws, dd.columns)
    for r in dd.rows:
        append_row(ws, r)
    for col, width in zip("ABCDEF", (12, 14, 14, 16, 16, 28)):
        ws.column_dimensions[col].width = width
    return wb


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
    target = report.row(6).target
    body = _("本年度志愿服务时长目标为每人 %(t)s，您目前还未达到。请在“我的班次”中报名近期的巡逻班次，谢谢！",
             t=target.lstrip("≥")) + "\n\n—— " + sender_line(session, created_by_user_id)
    result = post_message(session, kind="notice", title=_("服务时长提醒"), body=body,
                          recipients=[Recipient(volunteer_id=v) for v in ids], dedupe_key=f"hours-remind:{nonce}",
                          audience=_("未达到时长目标的志愿者") + (f"（{team}）" if team else ""),
                          created_by_user_id=created_by_user_id, clock=clock)
    return result.message_id, result.recipients


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
