"""The weekly indicator digest for coordinators (Monday 09:00, Shanghai time)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from models.attendance import REVIEW_REJECTED, Attendance, AttendanceCredit
from models.messaging import OutboxItem
from models.user import STAFF_ROLES, User
from services.clock import SHANGHAI, Clock, system_clock
from services.hours import floor_hours
from services.i18n import _, in_programme_language
from services.phrases import localized
from services.indicators import IndicatorReport, compute_indicators
from services.messaging import QueuedMessage, post_message
from services.outbox import Recipient
from services.programme_year import programme_year_of, year_dates

MARK = {"green": "✅", "amber": "🟡", "red": "❌"}


def digest_text(session: Session, *, now: datetime,
                indicators: Callable[[int, date], IndicatorReport] | None = None) -> tuple[str, str]:
    """Counts what the indicators count: the programme year's figures, rejected records left out,
    hours rounded down like the dashboard. `indicators(year, today)` may hand over a report already
    computed (the coordinator's preview reuses the dashboard's: a district's year takes seconds);
    the digest that is sent computes afresh."""
    today = now.astimezone(SHANGHAI).date()
    year = programme_year_of(session, today)
    report = indicators(year, today) if indicators else compute_indicators(session, year, today=today, evidence_limit=5)
    week_ago = today - timedelta(days=7)
    lines = [_("截至 %(d)s（%(y)d 年度）", d=today.isoformat(), y=year), ""]
    for row in report.rows:
        lines.append(f"{MARK[row.status]} {row.number}. {row.name}：{row.actual}（{_('目标')} {row.target}）")
    in_week = and_(Attendance.work_date > week_ago, Attendance.work_date <= today,
                   Attendance.review_status != REVIEW_REJECTED)
    minutes = session.scalar(select(func.coalesce(func.sum(AttendanceCredit.minutes), 0))
                             .join(Attendance, Attendance.id == AttendanceCredit.attendance_id)
                             .where(AttendanceCredit.work_date > week_ago, AttendanceCredit.work_date <= today,
                                    Attendance.review_status != REVIEW_REJECTED)) or 0
    patrols = session.scalar(select(func.count(Attendance.id)).where(in_week)) or 0
    weeks_left = max(0, (year_dates(session, year)[1] - today).days // 7)
    hours_row, ins_row, eq_row = report.row(6), report.row(10), report.row(9)
    open_complaints = report.row(11).evidence.get("open", 0)
    failed = session.scalar(select(func.count(OutboxItem.id)).where(
        OutboxItem.status.in_(("failed", "unreachable")), OutboxItem.created_at >= now - timedelta(days=7))) or 0
    lines += ["", _("本周：巡逻 %(p)d 人次，%(h).1f 小时", p=patrols, h=floor_hours(int(minutes))),
              _("未达 %(t)s 的志愿者 %(n)d 人，全年还剩 %(w)d 周", t=localized(hours_row.target), n=hours_row.evidence.get("below_count", 0),
                w=weeks_left),
              _("未按时投保 %(a)d 人，未按时领装备 %(b)d 人", a=ins_row.evidence.get("late_count", 0),
                b=eq_row.evidence.get("late_count", 0)),
              _("未办结投诉 %(n)d 件；近 7 天发送失败 %(f)d 条", n=open_complaints, f=failed)]
    iso = today.isocalendar()
    return _("平安马甲周报 %(y)d 年第 %(w)d 周", y=iso[0], w=iso[1]), "\n".join(lines)


def send_digest(session: Session, *, clock: Clock = system_clock) -> QueuedMessage | None:
    """Queue this week's digest to every active admin and coordinator (once per ISO week)."""
    now = clock()
    with in_programme_language():   # the same digest for every account, in Chinese
        title, body = digest_text(session, now=now)
        audience = _("平安办账号")
    users = list(session.scalars(select(User.id).where(User.active.is_(True), User.role.in_(STAFF_ROLES))))
    if not users:
        return None
    iso = now.astimezone(SHANGHAI).isocalendar()
    return post_message(session, kind="digest", title=title, body=body,
                        recipients=[Recipient(user_id=u) for u in users], dedupe_key=f"digest:{iso[0]}-W{iso[1]:02d}",
                        audience=audience, clock=clock)
