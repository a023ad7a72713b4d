"""What SMS costs, as part of the programme's budget (indicator 1: the work-funds line).

Every SMS sent is one delivery attempt with its segments and cost (segments × the unit price the
office entered). Each month's total is one automatic, read-only expenditure on the work-funds line
of that month's programme year, rewritten as the month goes on, so the existing sum behind
indicator 1 and the budget page include it. The monthly cap stops bulk SMS; the office is warned
(a message to the admins) when the month reaches the warning share of the cap.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.channels import ATTEMPT_SENT, CHANNEL_SMS, DeliveryAttempt
from models.programme import LINE_WORK_FUND, Expenditure
from models.user import User
from services.channels import settings as cs
from services.clock import Clock, system_clock
from services.i18n import _, in_programme_language

SHANGHAI = ZoneInfo("Asia/Shanghai")
AUTO_PREFIX = "messaging:"


def month_bounds(day: date) -> tuple[datetime, datetime]:
    """The month (Shanghai time) that holds `day`, as UTC instants."""
    start = datetime(day.year, day.month, 1, tzinfo=SHANGHAI)
    nxt = datetime(day.year + (day.month == 12), day.month % 12 + 1, 1, tzinfo=SHANGHAI)
    return start.astimezone(timezone.utc), nxt.astimezone(timezone.utc)


def month_cost(session: Session, day: date) -> Decimal:
    start, end = month_bounds(day)
    total = session.scalar(select(func.coalesce(func.sum(DeliveryAttempt.cost), 0)).where(
        DeliveryAttempt.channel == CHANNEL_SMS, DeliveryAttempt.outcome == ATTEMPT_SENT,
        DeliveryAttempt.attempted_at >= start, DeliveryAttempt.attempted_at < end))
    return Decimal(str(total or 0)).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class CostStatus:
    month: str
    spent: Decimal
    cap: Decimal
    warn_at: Decimal
    sms_count: int
    segments: int

    @property
    def warning(self) -> bool:
        return self.cap > 0 and self.spent >= self.warn_at

    @property
    def capped(self) -> bool:
        return self.cap > 0 and self.spent >= self.cap


def cost_status(session: Session, *, clock: Clock = system_clock) -> CostStatus:
    today = clock().astimezone(SHANGHAI).date()
    start, end = month_bounds(today)
    count, segs = session.execute(select(func.count(DeliveryAttempt.id), func.coalesce(func.sum(DeliveryAttempt.segments), 0))
                                  .where(DeliveryAttempt.channel == CHANNEL_SMS, DeliveryAttempt.outcome == ATTEMPT_SENT,
                                         DeliveryAttempt.attempted_at >= start,
                                         DeliveryAttempt.attempted_at < end)).one()
    cap = cs.decimal(session, "sms_monthly_cap")
    return CostStatus(today.strftime("%Y-%m"), month_cost(session, today), cap,
                      (cap * cs.decimal(session, "sms_warn_ratio")).quantize(Decimal("0.01")), int(count), int(segs or 0))


def over_cap(session: Session, extra: Decimal, *, clock: Clock = system_clock) -> bool:
    """Would one more SMS costing `extra` pass this month's cap?"""
    cap = cs.decimal(session, "sms_monthly_cap")
    if cap <= 0:
        return False
    return month_cost(session, clock().astimezone(SHANGHAI).date()) + extra > cap


def sync_month_expenditure(session: Session, *, day: date, provider: str | None = None) -> Expenditure | None:
    """Write (or rewrite) the month's automatic messaging expenditure; returns it (None at 0 元)."""
    from services.programme import programme_year

    key = f"{AUTO_PREFIX}{day:%Y-%m}"
    amount = month_cost(session, day).quantize(Decimal("0.01"))
    row = session.scalar(select(Expenditure).where(Expenditure.auto_key == key))
    if amount <= 0 and row is None:
        return None
    programme_year(session, day.year)
    _start, end = month_bounds(day)
    spent_on = (end.astimezone(SHANGHAI) - timedelta(days=1)).date()
    description = _("短信费用 %(m)s（自动统计，只读）", m=f"{day:%Y-%m}")
    if row is None:
        row = Expenditure(year=day.year, line=LINE_WORK_FUND, spent_on=spent_on, amount=amount,
                          description=description, payee=provider_label(provider), auto_key=key,
                          created_by="system:messaging")
        session.add(row)
    else:
        row.amount, row.spent_on = amount, spent_on
        if provider and not row.payee:
            row.payee = provider_label(provider)
    session.commit()
    return row


def provider_label(provider: str | None) -> str | None:
    return {"aliyun": "阿里云", "tencent": "腾讯云"}.get(provider or "", provider)


def maybe_warn_office(session: Session, *, clock: Clock = system_clock) -> bool:
    """Once a month, when the warning share of the cap is reached, tell the admins (web inbox, Telegram)."""
    from models.user import ROLE_ADMIN
    from services.messaging import post_message
    from services.outbox import Recipient

    status = cost_status(session, clock=clock)
    if not status.warning:
        return False
    admins = list(session.scalars(select(User.id).where(User.role == ROLE_ADMIN, User.active.is_(True))))
    if not admins:
        return False
    with in_programme_language():
        title = _("短信费用提醒")
        body = _("本月短信费用已达 %(s)s 元，月度上限 %(c)s 元。达到上限后群发短信将停止（今晚班次提醒照发），请在“消息设置”中调整。",
                 s=f"{status.spent:.2f}", c=f"{status.cap:.2f}")
    result = post_message(session, kind="system", title=title,
                          body=body,
                          recipients=[Recipient(user_id=u) for u in admins], dedupe_key=f"sms-cap-warning:{status.month}",
                          clock=clock)
    return result.created


def double_count_warnings(session: Session, year: int) -> list[Expenditure]:
    """Manual expenditures that look like the same provider's SMS bill (it may be counted twice)."""
    words = ("短信", "SMS", "阿里云", "腾讯云", "aliyun", "tencent")
    autos = session.scalar(select(func.count(Expenditure.id)).where(Expenditure.year == year,
                                                                    Expenditure.auto_key.is_not(None)))
    if not autos:
        return []
    rows = session.scalars(select(Expenditure).where(Expenditure.year == year, Expenditure.auto_key.is_(None),
                                                     Expenditure.line == LINE_WORK_FUND))
    return [r for r in rows if any(w.lower() in f"{r.description} {r.payee or ''}".lower() for w in words)]


def message_sms_cost(session: Session, message_id: int) -> tuple[int, Decimal]:
    """How many SMS a message took, and what they cost (for its notice page)."""
    from models.messaging import OutboxItem

    count, total = session.execute(
        select(func.count(DeliveryAttempt.id), func.coalesce(func.sum(DeliveryAttempt.cost), 0))
        .join(OutboxItem, OutboxItem.id == DeliveryAttempt.outbox_id)
        .where(OutboxItem.message_id == message_id, DeliveryAttempt.channel == CHANNEL_SMS,
               DeliveryAttempt.outcome == ATTEMPT_SENT)).one()
    return int(count), Decimal(str(total or 0)).quantize(Decimal("0.01"))
