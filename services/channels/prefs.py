"""A volunteer's channel choice (on /me) and the office default."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.channels import CHANNEL_SMS, ContactPreference
from models.messaging import CHANNEL_TELEGRAM
from services.channels import settings as cs
from services.clock import Clock, system_clock
from services.errors import DomainError
from services.i18n import _

ORDERS = (f"{CHANNEL_TELEGRAM},{CHANNEL_SMS}", f"{CHANNEL_SMS},{CHANNEL_TELEGRAM}")


def channel_label(channel: str | None) -> str:
    return {CHANNEL_TELEGRAM: "Telegram", CHANNEL_SMS: _("短信"), "wecom": _("企业微信群"),
            "web": _("网页消息")}.get(channel or "", channel or "")


@dataclass(frozen=True)
class PreferenceView:
    order: str | None        # None: the office default
    effective: list[str]
    sms_opt_out: bool


def my_preferences(session: Session, volunteer_id: int) -> PreferenceView:
    row = session.get(ContactPreference, volunteer_id)
    own = cs.parse_order(row.channel_order) if row and row.channel_order else None
    return PreferenceView(",".join(own) if own else None, own or cs.office_order(session),
                          bool(row and row.sms_opt_out))


def set_preferences(session: Session, volunteer_id: int, *, order: str | None, sms_opt_out: bool,
                    clock: Clock = system_clock) -> PreferenceView:
    """Takes effect for messages queued from now on (and for SMS already queued: an opt-out stops them)."""
    order = (order or "").strip() or None
    if order is not None and order not in ORDERS:
        raise DomainError("bad_order", _("未知的接收顺序"))
    row = session.get(ContactPreference, volunteer_id)
    if row is None:
        row = ContactPreference(volunteer_id=volunteer_id)
        session.add(row)
    row.channel_order, row.sms_opt_out, row.updated_at = order, bool(sms_opt_out), clock()
    session.commit()
    return my_preferences(session, volunteer_id)
