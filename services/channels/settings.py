"""The office's messaging settings (entered on /admin/messaging), kept in `app_settings`.

Why not `services.settings.DEFAULTS`: these are many and belong to one page; provider credentials
are never here (they come from the environment).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from models.channels import CHANNEL_SMS
from models.messaging import CHANNEL_TELEGRAM
from models.signin import AppSetting

PREFIX = "msg."
DEFAULTS: dict[str, str] = {
    "channel_order": f"{CHANNEL_TELEGRAM},{CHANNEL_SMS}",
    "sms_enabled": "0",
    "sms_signature": "",
    "sms_unit_price": "0.045",         # 元 per segment (the provider's contract price)
    "sms_monthly_cap": "300",          # 元; bulk SMS stops at this month's cost
    "sms_warn_ratio": "0.8",           # warn the office at 80 % of the cap
    "sms_per_number_daily": "10",      # the providers' default per-number day limit
    "sms_per_number_interval": "60",   # seconds between two SMS to one number
    "sms_daily_limit": "5000",         # the account's day quota
}
CHANNELS = (CHANNEL_TELEGRAM, CHANNEL_SMS)


def get(session: Session, key: str) -> str:
    row = session.get(AppSetting, PREFIX + key)
    if row is not None:
        return row.value
    return DEFAULTS.get(key, "")


def put(session: Session, key: str, value: str, *, by: str | None) -> None:
    row = session.get(AppSetting, PREFIX + key)
    if row is None:
        session.add(AppSetting(key=PREFIX + key, value=value, updated_by=by))
    else:
        row.value, row.updated_by = value, by


def decimal(session: Session, key: str) -> Decimal:
    try:
        return Decimal(get(session, key) or DEFAULTS[key])
    except InvalidOperation:
        return Decimal(DEFAULTS[key])


def integer(session: Session, key: str) -> int:
    try:
        return int(get(session, key) or DEFAULTS[key])
    except ValueError:
        return int(DEFAULTS[key])


def parse_order(raw: str | None) -> list[str]:
    out: list[str] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if part in CHANNELS and part not in out:
            out.append(part)
    return out


def office_order(session: Session) -> list[str]:
    return parse_order(get(session, "channel_order")) or list(CHANNELS)
