"""Run-time settings an admin switches on the web (stored in `app_settings`)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.signin import AppSetting

SELF_SERVICE_SIGNIN = "self_service_signin"
# Written by the bot process from getMe, so the web can build t.me deep links.
TELEGRAM_BOT_USERNAME = "telegram_bot_username"
# The safety office's phone number: the bot and the pages give it to anyone it cannot help.
OFFICE_PHONE = "office_phone"

DEFAULTS: dict[str, str] = {
    # Phone + PIN sign-in: off until an admin turns it on (and PINs have been handed out).
    SELF_SERVICE_SIGNIN: "0",
    TELEGRAM_BOT_USERNAME: "",
    OFFICE_PHONE: "",
}


@dataclass(frozen=True)
class SettingsView:
    self_service_signin: bool
    office_phone: str = ""


def get_setting(session: Session, key: str) -> str:
    row = session.get(AppSetting, key)
    return row.value if row is not None else DEFAULTS[key]


def get_bool(session: Session, key: str) -> bool:
    return get_setting(session, key) == "1"


def set_setting(session: Session, key: str, value: str, *, by: str) -> None:
    if key not in DEFAULTS:
        raise KeyError(key)
    row = session.get(AppSetting, key)
    if row is None:
        session.add(AppSetting(key=key, value=value, updated_by=by))
    else:
        row.value = value
        row.updated_by = by
    session.commit()


def current_settings(session: Session) -> SettingsView:
    return SettingsView(self_service_signin=get_bool(session, SELF_SERVICE_SIGNIN),
                        office_phone=get_setting(session, OFFICE_PHONE))
