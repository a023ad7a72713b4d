"""The 14 performance indicators of the programme year, computed from what the service records.

Definitions follow the project's indicator table (see docs/indicators.md): each row has its
target, the actual value, a status (green = met; amber = not met yet but on track, for
year-to-date values; red = not met or off track) and the evidence behind it, so a coordinator can
drill down from a number to the volunteers, records and entries that make it.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models.attendance import (ATT_OPEN, REVIEW_APPROVED, REVIEW_NONE, REVIEW_REJECTED, Attendance,
                               AttendanceCredit, HourAdjustment, ScanRecord)
from models.event import Event
from models.messaging import Message, OutboxItem, SurveyRound
from models.programme import (LINE_WORK_FUND, Complaint, EquipmentDelivery, EquipmentIssue, Expenditure,
                              InsuranceCover, InsurancePolicy, JobRun, ProgrammeDocument, ProgrammeYear)
from models.volunteer import Volunteer
from services.clock import SHANGHAI
# Every string of a row is a Phrase: Chinese, and sayable again on an English page (services/phrases.py).
from services.phrases import phrase as _
from services.hours import floor_hours
from services.programme import programme_year
from services.programme_year import year_bounds, year_dates
from services.surveys import results as survey_results

GREEN, AMBER, RED = "green", "amber", "red"


@dataclass
class IndicatorRow:
    number: int
    level1: str
    level2: str
    name: str
    target: str
    actual: str
    status: str
    value: float | int | None = None
    note: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class IndicatorReport:
    year: int
    as_of: date
    year_to_date: bool
    rows: list[IndicatorRow]
    hours_by_month: dict[int, float]
    hours_histogram: dict[str, int]
    satisfaction_by_round: list[tuple[str, float, int]]
    weekly_hours: list[tuple[str, float]]
    # Set by whoever serves a stored report (web/indicator_cache.py), not by the computation.
    computed_at: datetime | None = None   # UTC
    updating: bool = False                # a change is being counted: these figures are the ones before it

    def row(self, number: int) -> IndicatorRow:
        return next(r for r in self.rows if r.number == number)


# Scheduler jobs that keep the service itself running (not the programme's routines), left out of
# indicator 13's "automatic tasks run": the stored indicators alone run 288 times a day.
PLUMBING_JOBS = ("indicator_snapshot",)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _amount(x: Decimal | float) -> str:
    """A target as the year's settings hold it: 15,000 and 10, but 10.50 when that is what was set."""
    text = f"{Decimal(x):,.2f}"
    return text[:-3] if text.endswith(".00") else text


def _yuan(x: Decimal | float) -> str:
    return _("%(n)s 元", n=f"{Decimal(x):,.2f}")


def _of(share: float, part: int, whole: int) -> str:
    """"37.6%（188/500）": a rate and the counts behind it."""
    return _("%(p)s（%(a)d/%(n)d）", p=_pct(share), a=part, n=whole)


def _insurance_reason(reason: str) -> str:
    """Why a volunteer counts as not insured on time (indicator 10's drill-down)."""
    return {"no_cover": _("没有投保记录"), "after_due": _("保障开始晚于投保截止日期"),
            "lapsed_at_first_patrol": _("首次巡逻当天不在保障期内"), "refused_uninsured": _("未投保签到被拒绝"),
            "uninsured_checkin": _("未投保签到（已标记）")}[reason]


def _as_utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _ge_status(actual: float, target: float, ytd: bool, fraction: float) -> str:
    if actual >= target:
        return GREEN
    return AMBER if ytd and actual >= target * fraction else RED


def active_volunteer_ids(session: Session, as_of: date) -> list[int]:
    """On the roster at `as_of`: joined by then and not withdrawn (PROGRAMME.md, "active volunteer")."""
    return list(session.scalars(select(Volunteer.id).where(
        Volunteer.joined_on <= as_of, or_(Volunteer.withdrawn_on.is_(None), Volunteer.withdrawn_on > as_of))))


def hours_by_volunteer(session: Session, start: date, end: date) -> dict[int, int]:
    """Credited minutes per volunteer in [start, end]: scans, imports, proxies and adjustments."""
    minutes: dict[int, int] = defaultdict(int)
    A, C, H = Attendance.__table__, AttendanceCredit.__table__, HourAdjustment.__table__
    for vid, m in session.execute(select(C.c.volunteer_id, func.sum(C.c.minutes))
                                  .select_from(C.join(A, A.c.id == C.c.attendance_id))
                                  .where(C.c.work_date.between(start, end), A.c.review_status != REVIEW_REJECTED)
                                  .group_by(C.c.volunteer_id)):
        minutes[vid] += int(m or 0)
    for vid, m in session.execute(select(H.c.volunteer_id, func.sum(H.c.minutes))
                                  .where(H.c.work_date.between(start, end)).group_by(H.c.volunteer_id)):
        minutes[vid] += int(m or 0)
    return minutes


def compute_indicators(session: Session, year: int, *, today: date, evidence_limit: int = 100) -> IndicatorReport:
    settings: ProgrammeYear = programme_year(session, year)
    start, end = year_dates(session, year)
    as_of = min(today, end)
    ytd = today <= end
    days = (end - start).days + 1
    fraction = max(0.0, min(1.0, ((as_of - start).days + 1) / days))
    active = active_volunteer_ids(session, as_of)
    n_active = len(active)
    names: dict[int, str] = {}  # filled in at the end, for the volunteers the evidence names
    rows: list[IndicatorRow] = []

    # 1 work-fund spending ------------------------------------------------------------------------
    spent = Decimal(session.scalar(select(func.coalesce(func.sum(Expenditure.amount), 0)).where(
        Expenditure.year == year, Expenditure.line == LINE_WORK_FUND)) or 0)
    target = Decimal(settings.target_work_fund)
    rows.append(IndicatorRow(1, _("成本指标"), _("经济成本指标"), _("志愿者工作开展成本"), _("≤%(n)s 元", n=_amount(target)), _yuan(spent),
                             GREEN if spent <= target else RED, float(spent),
                             evidence={"entries": session.scalar(select(func.count(Expenditure.id)).where(
                                 Expenditure.year == year, Expenditure.line == LINE_WORK_FUND))}))

    # 2 insurance premium per person ---------------------------------------------------------------
    # A policy's premium is charged to each programme year in proportion to the days it covers in
    # that year, so two consecutive year-long policies that straddle the year start add up to one
    # year's premium per person, not two.
    P, IC = InsurancePolicy, InsuranceCover
    in_year = and_(P.cover_start <= end, P.cover_end >= start)
    policies = session.execute(select(P, func.count(IC.id)).outerjoin(IC, IC.policy_id == P.id).where(in_year)
                               .group_by(P.id).order_by(P.cover_start, P.id)).all()
    covers = session.execute(select(IC.volunteer_id, P.id, P.cover_start, P.cover_end)
                             .join(P, P.id == IC.policy_id).where(in_year)).all()
    insured = {v for v, _p, _s, _e in covers}
    premiums = Decimal(0)
    apportioned = []
    for policy, n_insured in policies:
        total_days = (policy.cover_end - policy.cover_start).days + 1
        days_in = (min(policy.cover_end, end) - max(policy.cover_start, start)).days + 1
        charged = Decimal(policy.premium_per_person) * n_insured * days_in / total_days
        premiums += charged
        apportioned.append({"policy_no": policy.policy_no, "cover_start": policy.cover_start.isoformat(),
                            "cover_end": policy.cover_end.isoformat(), "premium_per_person": float(policy.premium_per_person),
                            "insured": n_insured, "days_in_year": days_in, "days_covered": total_days,
                            "share": f"{days_in}/{total_days}", "charged": float(round(charged, 2))})
    per_person = premiums / len(insured) if insured else Decimal(0)
    highest = max((Decimal(p.premium_per_person) for p, n in policies if n), default=Decimal(0))
    limit = Decimal(settings.target_insurance_per_person)
    status = (GREEN if per_person <= limit and highest <= limit else RED) if insured else (AMBER if ytd else RED)
    rows.append(IndicatorRow(2, _("成本指标"), _("经济成本指标"), _("平安志愿者意外险投保标准"), _("≤%(n)s 元/人", n=_amount(limit)),
                             _("%(n)s 元/人（最高 %(h)s 元）", n=f"{per_person:.2f}", h=f"{highest:.2f}") if insured
                             else _("尚无投保记录"),
                             status, float(round(per_person, 2)),
                             note=_("保费按保障期落在本年度的天数分摊") if apportioned else "",
                             evidence={"insured": len(insured), "premiums": float(round(premiums, 2)),
                                       "policies": apportioned}))

    # 3 equipment cost per person ------------------------------------------------------------------
    deliveries = session.execute(select(EquipmentDelivery.sets, EquipmentDelivery.unit_cost, EquipmentDelivery.passed_sets)
                                 .where(EquipmentDelivery.delivered_on.between(start, end))).all()
    total_cost = sum((Decimal(s) * Decimal(c) for s, c, _p in deliveries), Decimal(0))
    issues = session.execute(select(EquipmentIssue.volunteer_id, func.min(EquipmentIssue.issued_on))
                             .where(EquipmentIssue.issued_on.between(start, end))
                             .group_by(EquipmentIssue.volunteer_id)).all()
    first_issue = {v: d for v, d in issues}
    equipped = len(first_issue)
    cost_pp = total_cost / equipped if equipped else Decimal(0)
    limit = Decimal(settings.target_equipment_per_person)
    rows.append(IndicatorRow(3, _("成本指标"), _("经济成本指标"), _("人员装备制作单位成本"), _("≤%(n)s 元/人", n=_amount(limit)),
                             _("%(n)s 元/人", n=f"{cost_pp:.2f}") if equipped else _("尚无发放记录"),
                             (GREEN if cost_pp <= limit else RED) if equipped else (AMBER if ytd else RED),
                             float(cost_pp), evidence={"total_cost": float(total_cost), "equipped": equipped}))

    # 4 number of volunteers -----------------------------------------------------------------------
    tv = settings.target_volunteers
    rows.append(IndicatorRow(4, _("产出指标"), _("数量指标"), _("志愿者人数"), _("=%(n)d 人", n=tv), _("%(n)d 人", n=n_active),
                             GREEN if n_active >= tv else (AMBER if ytd and n_active >= tv * 0.95 else RED), n_active,
                             note=_("在册且未退出的志愿者（%(d)s）", d=as_of.isoformat())))

    # 5 equipment sets made ------------------------------------------------------------------------
    sets = sum(s for s, _c, _p in deliveries)
    ts = settings.target_equipment_sets
    due = settings.equipment_due or end
    rows.append(IndicatorRow(5, _("产出指标"), _("数量指标"), _("人员装备制作数量"), _("≥%(n)d 套", n=ts), _("%(n)d 套", n=sets),
                             GREEN if sets >= ts else (AMBER if ytd and as_of < due else RED), sets,
                             evidence={"deliveries": len(deliveries)}))

    # 6 hours per volunteer ------------------------------------------------------------------------
    minutes = hours_by_volunteer(session, start, end)
    target_h = float(settings.target_hours)
    per = {v: minutes.get(v, 0) / 60.0 for v in active}
    mean = sum(per.values()) / n_active if n_active else 0.0
    mean_shown = floor_hours(sum(minutes.get(v, 0) for v in active) // n_active) if n_active else 0.0
    at_target = sum(1 for h in per.values() if h >= target_h)
    share = at_target / n_active if n_active else 0.0
    below = sorted(((v, h) for v, h in per.items() if h < target_h), key=lambda x: x[1])
    if settings.hours_rule == "every":
        status = GREEN if n_active and at_target == n_active else (AMBER if ytd and mean >= target_h * fraction else RED)
    else:
        status = _ge_status(mean, target_h, ytd, fraction) if n_active else RED
    rows.append(IndicatorRow(6, _("产出指标"), _("数量指标"), _("志愿者工作时长"), _("≥%(h)s 小时", h=f"{target_h:g}"),
                             _("人均 %(m).1f 小时；达标 %(p)s（%(a)d/%(n)d）", m=mean_shown, p=_pct(share), a=at_target, n=n_active),
                             status, round(mean, 2),
                             note=_("口径：%(r)s", r=_("每人均达标") if settings.hours_rule == "every" else _("人均")),
                             evidence={"rule": settings.hours_rule, "target_hours": target_h, "mean": round(mean, 2), "share_at_target": round(share, 4), "below_count": len(below),
                                       "below": [{"volunteer_id": v, "name": names.get(v, ""),
                                                  "hours": floor_hours(minutes.get(v, 0))}
                                                 for v, h in below[:evidence_limit]]}))

    # 7 work-quality compliance --------------------------------------------------------------------
    A = Attendance
    closed = and_(A.work_date.between(start, end), A.status != ATT_OPEN)
    total_att = session.scalar(select(func.count(A.id)).where(closed)) or 0
    normal = session.scalar(select(func.count(A.id)).where(closed, or_(
        A.review_status == REVIEW_APPROVED, and_(A.status == "closed", A.review_status == REVIEW_NONE)))) or 0
    flagged = session.scalar(select(func.count(A.id)).where(closed, A.review_status == "flagged")) or 0
    quality = normal / total_att if total_att else 1.0
    rows.append(IndicatorRow(7, _("产出指标"), _("质量指标"), _("志愿者工作质量达标率"), "=100%",
                             _of(quality, normal, total_att) if total_att else _pct(quality),
                             GREEN if quality >= 1.0 else (AMBER if ytd and flagged else RED), round(quality, 4),
                             note=_("待核对 %(f)d 条", f=flagged) if flagged else "",
                             evidence={"normal": normal, "total": total_att, "flagged": flagged}))

    # 8 equipment quality --------------------------------------------------------------------------
    passed = sum(p for _s, _c, p in deliveries)
    eq_quality = passed / sets if sets else 0.0
    rows.append(IndicatorRow(8, _("产出指标"), _("质量指标"), _("人员装备制作达标率"), "=100%",
                             _of(eq_quality, passed, sets) if sets else _("尚无到货记录"),
                             GREEN if sets and passed == sets else (AMBER if ytd and not sets else RED), round(eq_quality, 4)))

    # first patrol of the year per volunteer (for 9 and 10); a rejected record is not a patrol
    first_patrol = dict(session.execute(select(A.volunteer_id, func.min(A.work_date))
                                        .where(A.work_date.between(start, end), A.review_status != REVIEW_REJECTED)
                                        .group_by(A.volunteer_id)).all())

    # 9 equipment on time --------------------------------------------------------------------------
    eq_due = settings.equipment_due or end
    late_eq = [v for v in active if not (v in first_issue and first_issue[v] <= eq_due
                                         and (v not in first_patrol or first_issue[v] <= first_patrol[v]))]
    on_time = n_active - len(late_eq)
    ratio = on_time / n_active if n_active else 0.0
    rows.append(IndicatorRow(9, _("产出指标"), _("时效指标"), _("志愿者工作装备制作及时率"), "=100%",
                             _of(ratio, on_time, n_active),
                             GREEN if n_active and on_time == n_active else (AMBER if ytd and as_of <= eq_due else RED),
                             round(ratio, 4), note=_("截止日期 %(d)s", d=eq_due.isoformat()),
                             evidence={"late_count": len(late_eq), "late": [{"volunteer_id": v, "name": names.get(v, "")}
                                                                            for v in late_eq[:evidence_limit]]}))

    # 10 insurance on time -------------------------------------------------------------------------
    # On time = cover in force on the day of the first patrol of the year, cover begun by the due
    # date, and never showing up uninsured: a check-in flagged `uninsured`, or one the gate refused
    # (`enforce` leaves no attendance, only the scan record's refusal code). A refused check-in is an
    # attempted first patrol too.
    ins_due = settings.insurance_due or end
    periods: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for v, _pid, s_day, e_day in covers:
        periods[v].append((s_day, e_day))
    uninsured_days: dict[int, list[tuple[date, str]]] = defaultdict(list)
    for v, day in session.execute(select(A.volunteer_id, A.work_date).where(A.work_date.between(start, end),
                                                                            A.flags.like("%uninsured%"))):
        uninsured_days[v].append((day, "flagged"))
    y_from, y_to = year_bounds(session, year)
    for v, at in session.execute(select(ScanRecord.volunteer_id, ScanRecord.scanned_at).where(
            ScanRecord.code == "uninsured", ScanRecord.action == "refused", ScanRecord.volunteer_id.is_not(None),
            ScanRecord.scanned_at >= y_from, ScanRecord.scanned_at < y_to)):
        uninsured_days[v].append((_as_utc(at).astimezone(SHANGHAI).date(), "refused"))
    late_ins: list[dict[str, Any]] = []
    for v in active:
        own = periods.get(v, [])
        first = min([d for d in (first_patrol.get(v),) if d] + [d for d, _k in uninsured_days.get(v, [])], default=None)
        if not own:
            reason, day = "no_cover", None
        elif min(s_day for s_day, _e in own) > ins_due:
            reason, day = "after_due", min(s_day for s_day, _e in own)
        elif first is not None and not any(s_day <= first <= e_day for s_day, e_day in own):
            reason = "refused_uninsured" if (first, "refused") in uninsured_days.get(v, []) else "lapsed_at_first_patrol"
            day = first
        elif uninsured_days.get(v):
            day, kind = min(uninsured_days[v])
            reason = "refused_uninsured" if kind == "refused" else "uninsured_checkin"
        else:
            continue
        late_ins.append({"volunteer_id": v, "name": "", "reason": reason, "reason_text": _insurance_reason(reason),
                         "date": day.isoformat() if day else None})
    refusals = sorted(((v, d) for v, days_ in uninsured_days.items() for d, k in days_ if k == "refused"),
                      key=lambda x: (x[1], x[0]))
    uninsured_vols = set(uninsured_days)
    ok_ins = n_active - len(late_ins)
    ratio = ok_ins / n_active if n_active else 0.0
    rows.append(IndicatorRow(10, _("产出指标"), _("时效指标"), _("平安志愿者意外险投保及时率"), "=100%",
                             _of(ratio, ok_ins, n_active),
                             GREEN if n_active and ok_ins == n_active else (
                                 AMBER if ytd and as_of <= ins_due and not uninsured_vols else RED),
                             round(ratio, 4), note=_("截止日期 %(d)s；未投保签到 %(n)d 人", d=ins_due.isoformat(), n=len(uninsured_vols)),
                             evidence={"late_count": len(late_ins), "uninsured_checkins": len(uninsured_vols),
                                       "refused_checkins": len(refusals),
                                       "refusals": [{"volunteer_id": v, "name": "", "date": d.isoformat()}
                                                    for v, d in refusals[:evidence_limit]],
                                       "late": late_ins[:evidence_limit]}))

    # 11 complaints --------------------------------------------------------------------------------
    complaints = session.scalar(select(func.count(Complaint.id)).where(Complaint.received_on.between(start, end))) or 0
    open_c = session.scalar(select(func.count(Complaint.id)).where(Complaint.received_on.between(start, end),
                                                                   Complaint.status == "open")) or 0
    rows.append(IndicatorRow(11, _("效益指标"), _("社会效益指标"), _("志愿者投诉发生数"), _("≤%(n)d 次", n=settings.target_complaints),
                             _("%(n)d 次", n=complaints), GREEN if complaints <= settings.target_complaints else RED, complaints,
                             note=_("未办结 %(n)d 件", n=open_c) if open_c else "",
                             evidence={"complaints": complaints, "open": open_c}))

    # 12 safety work advancing (qualitative) -------------------------------------------------------
    C = AttendanceCredit
    month_rows = session.execute(select(C.work_date, func.sum(C.minutes)).join(A, A.id == C.attendance_id)
                                 .where(C.work_date.between(start, end), A.review_status != REVIEW_REJECTED)
                                 .group_by(C.work_date)).all()
    by_month: dict[int, float] = {(start.month + i - 1) % 12 + 1: 0.0 for i in range(12)}  # in the year's order
    month_minutes = 0
    weekly: dict[str, float] = defaultdict(float)
    for day, m in month_rows:
        by_month[day.month] += (m or 0) / 60.0
        month_minutes += int(m or 0)
        iso = day.isocalendar()
        weekly[f"{iso[0]}-W{iso[1]:02d}"] += (m or 0) / 60.0
    events = list(session.scalars(select(Event.name).where(Event.id.in_(
        select(A.event_id).where(A.work_date.between(start, end)))).order_by(Event.starts_on)))
    points = session.scalar(select(func.count(func.distinct(A.point_id))).where(A.work_date.between(start, end))) or 0
    rows.append(IndicatorRow(12, _("效益指标"), _("社会效益指标"), _("平安建设推进情况"), _("推进"),
                             settings.assessment_safety or _("重大节点 %(e)d 个、点位 %(p)d 个、累计 %(h).1f 小时（待评估）",
                                                             e=len(events), p=points, h=floor_hours(month_minutes)),
                             GREEN if settings.assessment_safety else AMBER, None,
                             note=_("评估：%(a)s", a=settings.assessed_by) if settings.assessed_by else "",
                             evidence={"events": events, "points_covered": points,
                                       "hours_by_month": {m: round(h, 1) for m, h in by_month.items()}}))

    # 13 long-term management mechanism (qualitative) -----------------------------------------------
    docs = dict(session.execute(select(ProgrammeDocument.kind, func.count(ProgrammeDocument.id))
                                .where(ProgrammeDocument.year == year).group_by(ProgrammeDocument.kind)).all())
    y_start, y_next = year_bounds(session, year)
    y_end = min(y_next, datetime.combine(as_of, datetime.min.time(), tzinfo=SHANGHAI) + timedelta(days=1))
    sent = dict(session.execute(select(Message.kind, func.count(OutboxItem.id))
                                .join(OutboxItem, OutboxItem.message_id == Message.id)
                                .where(OutboxItem.status == "sent", OutboxItem.sent_at >= y_start,
                                       OutboxItem.sent_at < y_end).group_by(Message.kind)).all())
    runs = dict(session.execute(select(JobRun.job, func.count(JobRun.id))
                                .where(JobRun.outcome == "ok", JobRun.started_at >= y_start, JobRun.started_at < y_end,
                                       JobRun.job.not_in(PLUMBING_JOBS))
                                .group_by(JobRun.job)).all())
    roster_updated = session.scalar(select(func.max(Volunteer.updated_at)))
    rows.append(IndicatorRow(13, _("效益指标"), _("可持续影响指标"), _("志愿者队伍建设长效管理机制健全性"), _("健全且执行有效"),
                             settings.assessment_mechanism or _("制度文件 %(d)d 份、自动任务运行 %(r)d 次、提醒与周报送达 %(s)d 条（待评估）",
                                                                d=sum(docs.values()), r=sum(runs.values()),
                                                                s=sent.get("reminder", 0) + sent.get("digest", 0)),
                             GREEN if settings.assessment_mechanism else AMBER, None,
                             evidence={"documents": docs, "messages_sent": sent, "job_runs": runs,
                                       "roster_updated": roster_updated.isoformat() if roster_updated else None}))

    # 14 satisfaction ------------------------------------------------------------------------------
    round_id = settings.survey_round_id or session.scalar(
        select(SurveyRound.id).where(SurveyRound.opens_at >= y_start, SurveyRound.opens_at < y_end)
        .order_by(SurveyRound.opens_at.desc()))
    rounds = [(r.name, survey_results(session, r.id)) for r in session.scalars(
        select(SurveyRound).where(SurveyRound.opens_at >= y_start, SurveyRound.opens_at < y_end).order_by(SurveyRound.opens_at))]
    ts = float(settings.target_satisfaction)
    if round_id:
        res = survey_results(session, round_id)
        rate = res.satisfaction_rate
        rows.append(IndicatorRow(14, _("满意度指标"), _("服务对象满意度指标"), _("平安志愿者满意度"), f"≥{round(ts * 100, 2):g}%",
                                 _("%(r)s（%(n)d 份，回收率 %(rr)s）", r=_pct(rate), n=res.responses, rr=_pct(res.response_rate)),
                                 GREEN if res.responses and rate >= ts else RED, round(rate, 4), note=res.name,
                                 evidence={"round": res.name, "responses": res.responses, "eligible": res.eligible,
                                           "response_rate": round(res.response_rate, 4), "by_score": res.by_score}))
    else:
        rows.append(IndicatorRow(14, _("满意度指标"), _("服务对象满意度指标"), _("平安志愿者满意度"), f"≥{round(ts * 100, 2):g}%",
                                 _("尚未开展调查"), AMBER if ytd else RED, None))

    _fill_names(session, rows)
    # In bucket order (a dict keeps it); the edge between the middle buckets is the year's target.
    t = f"{target_h:g}"
    histogram = {"0": 0, "0–3": 0, f"3–{t}": 0, f"{t}–12": 0, "12+": 0}
    for h in per.values():
        key = "0" if h == 0 else "0–3" if h < 3 else f"3–{t}" if h < target_h else f"{t}–12" if h < 12 else "12+"
        histogram[key] += 1
    return IndicatorReport(year, as_of, ytd, rows, {m: round(h, 1) for m, h in by_month.items()}, histogram,
                           [(name, res.satisfaction_rate, res.responses) for name, res in rounds],
                           sorted((k, round(v, 1)) for k, v in weekly.items()))


def _fill_names(session: Session, rows: list[IndicatorRow]) -> None:
    lists = [item for r in rows for key in ("below", "late", "refusals") for item in (r.evidence or {}).get(key, [])]
    ids = list({item["volunteer_id"] for item in lists})
    names: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        names.update(session.execute(select(Volunteer.id, Volunteer.name)
                                     .where(Volunteer.id.in_(ids[start:start + 900]))).all())
    for item in lists:
        item["name"] = names.get(item["volunteer_id"], "")


LIMITED_EVIDENCE = ("below", "late", "refusals")  # the lists compute_indicators cuts at evidence_limit


def with_evidence_limit(report: IndicatorReport, limit: int) -> IndicatorReport:
    """The same report as if computed with `evidence_limit=limit` (≤ the one it was computed with):
    the evidence lists cut shorter. Lets one computation serve the drill-downs (2,000 names) and
    the JSON API (100) alike."""
    from dataclasses import replace

    rows = [replace(r, evidence={k: (v[:limit] if k in LIMITED_EVIDENCE and isinstance(v, list) else v)
                                 for k, v in (r.evidence or {}).items()}) for r in report.rows]
    return replace(report, rows=rows)


def report_as_dict(report: IndicatorReport) -> dict[str, Any]:
    return {"year": report.year, "as_of": report.as_of.isoformat(), "year_to_date": report.year_to_date,
            "indicators": [{"number": r.number, "level1": r.level1, "level2": r.level2, "name": r.name,
                            "target": r.target, "actual": r.actual, "value": r.value, "status": r.status,
                            "note": r.note, "evidence": r.evidence} for r in report.rows],
            "hours_by_month": report.hours_by_month, "hours_histogram": report.hours_histogram,
            # When the figures were computed (they may be up to a few minutes old), and whether a
            # change made by the office is still being counted into them.
            "computed_at": report.computed_at.isoformat() if report.computed_at else None,
            "updating": report.updating}
