"""Turning a claimed outbox item into one SMS: limits, the monthly cap, the template, the cost.

The sender process calls `prepare_sms` for each claimed item; it answers with what to send, or
with a decision (wait, or move on to the next channel) that it has already recorded.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.channels import ATTEMPT_SENT, ATTEMPT_SKIPPED, CHANNEL_SMS, ContactPreference, DeliveryAttempt
from models.volunteer import Volunteer
from services.channels import settings as cs
from services.channels.costs import SHANGHAI, over_cap
from services.channels.survey_links import survey_token
from services.clock import Clock, local_date, system_clock
from services.outbox import Claimed, advance, release
from services.sms.templates import TEMPLATES, render, segments, sms_ready, template_config
from services.volunteers import withdrawal_in_effect


@dataclass(frozen=True)
class SmsJob:
    item_id: int
    phone: str
    sign_name: str
    template: str
    template_code: str
    params: dict[str, str]
    order: list[str]
    segments: int
    cost: Decimal


@dataclass(frozen=True)
class SmsDecision:
    item_id: int
    action: str        # moved (to the next channel) | wait
    reason: str


def inbox_link(base_url: str, message_id: int | None) -> str:
    return f"{base_url.rstrip('/')}/i/{message_id}" if message_id else base_url.rstrip("/") + "/me/inbox"


def prepare_sms(session: Session, item: Claimed, *, base_url: str, secret: str,
                clock: Clock = system_clock) -> SmsJob | SmsDecision:
    now = clock()

    def move(reason: str) -> SmsDecision:
        advance(session, item.id, error=reason, outcome=ATTEMPT_SKIPPED, clock=clock)
        return SmsDecision(item.id, "moved", reason)

    def wait(until: datetime, reason: str) -> SmsDecision:
        release(session, [item.id], at=until)
        return SmsDecision(item.id, "wait", reason)

    sms = item.payload.get("sms") or {}
    template = sms.get("template")
    vol = session.get(Volunteer, item.volunteer_id) if item.volunteer_id else None
    # Withdrawn by now (not merely dated ahead): the SMS is not sent, the web inbox keeps the message.
    if vol is None or withdrawal_in_effect(vol.status, vol.withdrawn_on, local_date(now)) or not vol.phone:
        return move("no mobile number")
    pref = session.get(ContactPreference, vol.id)
    if pref is not None and pref.sms_opt_out:
        return move("opted out of SMS")
    if template not in TEMPLATES or not sms_ready(session, template):
        return move("SMS not configured for this template")
    sent_to_number = select(DeliveryAttempt.attempted_at).where(
        DeliveryAttempt.channel == CHANNEL_SMS, DeliveryAttempt.outcome == ATTEMPT_SENT,
        DeliveryAttempt.volunteer_id == vol.id)
    day_start = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    per_day = session.scalar(select(func.count()).select_from(sent_to_number.where(
        DeliveryAttempt.attempted_at >= day_start).subquery())) or 0
    if per_day >= cs.integer(session, "sms_per_number_daily"):
        return move("per-number daily SMS limit reached")
    last = session.scalar(sent_to_number.order_by(DeliveryAttempt.attempted_at.desc()).limit(1))
    interval = timedelta(seconds=cs.integer(session, "sms_per_number_interval"))
    if last is not None and last + interval > now:
        return wait(last + interval, "per-number interval")
    today = session.scalar(select(func.count(DeliveryAttempt.id)).where(
        DeliveryAttempt.channel == CHANNEL_SMS, DeliveryAttempt.outcome == ATTEMPT_SENT,
        DeliveryAttempt.attempted_at >= day_start)) or 0
    if today >= cs.integer(session, "sms_daily_limit"):
        return move("account daily SMS limit reached")
    params = dict(sms.get("params") or {})
    if template == "signin_link":
        from services.signin import issue_login_link

        params["link"] = issue_login_link(session, vol.id, base_url=base_url, created_by="sms", clock=clock).url
    elif template == "signin_code":
        from services.signin import issue_sms_code

        # Made now, not when asked for: the outbox never holds a code, and this text's code
        # replaces any earlier one (a retry or a resend sends a new code).
        params["code"] = issue_sms_code(session, vol.id, clock=clock)
    elif template == "survey_invite" and sms.get("round_id"):
        params["link"] = f"{base_url.rstrip('/')}/s/{survey_token(secret, int(sms['round_id']), vol.id)}"
    else:
        params["link"] = inbox_link(base_url, item.message_id)
    tpl = TEMPLATES[template]
    params = {name: str(params.get(name) or "") for name, _limit in tpl.params}
    config = template_config(session, template)
    signature = cs.get(session, "sms_signature").strip()
    count = segments(signature, render(config.text, template, params))
    cost = (cs.decimal(session, "sms_unit_price") * count).quantize(Decimal("0.0001"))
    if item.bulk and over_cap(session, cost, clock=clock):
        return move("monthly SMS cap reached")
    session.rollback()  # read-only so far: end the transaction before the network call
    return SmsJob(item.id, vol.phone, signature, template, config.code, params, [n for n, _l in tpl.params],
                  count, cost)
