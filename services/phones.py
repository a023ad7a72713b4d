"""Mainland mobile numbers, as people type them into spreadsheets."""
from __future__ import annotations

import re

from services.errors import DomainError
from services.i18n import _

_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def normalise_phone(raw: object) -> str:
    """Return the bare 11-digit number.

    Accepts spaces and dashes, a `+86`/`0086`/`86` prefix, and the float Excel stores a number
    column as (`13800138000.0`).
    """
    if raw is None:
        raise DomainError("phone_missing", _("缺少手机号"))
    if isinstance(raw, float):
        if not raw.is_integer():
            raise DomainError("phone_invalid", _("手机号格式不正确：%(v)s", v=raw))
        raw = int(raw)
    value = str(raw).strip()
    if re.fullmatch(r"\d+\.0+", value):
        value = value.split(".")[0]
    value = re.sub(r"[\s\-()（）]", "", value)
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if not value:
        raise DomainError("phone_missing", _("缺少手机号"))
    if not _MOBILE_RE.match(value):
        raise DomainError("phone_invalid", _("手机号格式不正确：%(v)s（应为 11 位手机号）", v=raw))
    return value
