"""The office's messaging settings page: what must be filled in before SMS goes live."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Mapping

from sqlalchemy.orm import Session

from services.channels import settings as cs
from services.channels.prefs import ORDERS
from services.errors import DomainError
from services.i18n import _
from services.sms.templates import TEMPLATES, render, segments, template_config, template_label

MAX_SEGMENTS = 3


@dataclass(frozen=True)
class TemplateRow:
    name: str
    label: str
    params: list[tuple[str, int]]
    sample: str
    code: str
    text: str
    worst_segments: int      # with every parameter at its maximum length


def worst_case_segments(signature: str, name: str, text: str) -> int:
    params = {p: "字" * limit for p, limit in TEMPLATES[name].params}
    return segments(signature, render(text, name, params))


def template_rows(session: Session) -> list[TemplateRow]:
    signature = cs.get(session, "sms_signature")
    out = []
    for name, tpl in TEMPLATES.items():
        config = template_config(session, name)
        out.append(TemplateRow(name, template_label(name), list(tpl.params), tpl.sample, config.code, config.text,
                               worst_case_segments(signature, name, config.text) if config.text else 0))
    return out


def _decimal(raw: str, label: str, low: Decimal, high: Decimal) -> str:
    try:
        value = Decimal((raw or "").strip())
    except InvalidOperation:
        raise DomainError("bad_number", _("%(l)s不是有效的数字", l=label)) from None
    if not (low <= value <= high):
        raise DomainError("bad_number", _("%(l)s超出范围", l=label))
    return str(value)


def _int(raw: str, label: str, low: int, high: int) -> str:
    try:
        value = int((raw or "").strip())
    except ValueError:
        raise DomainError("bad_number", _("%(l)s不是有效的整数", l=label)) from None
    if not (low <= value <= high):
        raise DomainError("bad_number", _("%(l)s超出范围", l=label))
    return str(value)


def save_settings(session: Session, form: Mapping[str, str], *, by: str) -> None:
    """All or nothing: a bad field changes nothing."""
    signature = (form.get("sms_signature") or "").strip()
    if len(signature) > 12 or any(c in signature for c in "【】[]"):
        raise DomainError("bad_signature", _("短信签名为 2–12 个字，不含【】"))
    order = (form.get("channel_order") or "").strip()
    if order not in ORDERS:
        raise DomainError("bad_order", _("未知的接收顺序"))
    values = {
        "sms_enabled": "1" if form.get("sms_enabled") else "0",
        "sms_signature": signature,
        "channel_order": order,
        "sms_unit_price": _decimal(form.get("sms_unit_price", ""), _("短信单价"), Decimal("0"), Decimal("1")),
        "sms_monthly_cap": _decimal(form.get("sms_monthly_cap", ""), _("每月上限"), Decimal("0"), Decimal("15000")),
        "sms_warn_ratio": _decimal(form.get("sms_warn_ratio", ""), _("提醒比例"), Decimal("0.1"), Decimal("1")),
        "sms_per_number_daily": _int(form.get("sms_per_number_daily", ""), _("每个号码每天条数"), 1, 50),
        "sms_per_number_interval": _int(form.get("sms_per_number_interval", ""), _("同一号码间隔秒数"), 0, 3600),
        "sms_daily_limit": _int(form.get("sms_daily_limit", ""), _("账号每天条数"), 1, 1_000_000),
    }
    for name, tpl in TEMPLATES.items():
        code = (form.get(f"sms_tpl_{name}_code") or "").strip()
        text = (form.get(f"sms_tpl_{name}_text") or "").strip()
        if len(code) > 32 or len(text) > 300:
            raise DomainError("too_long", _("模板“%(t)s”的代码或内容过长", t=template_label(name)))
        if text:
            missing = [p for i, (p, _limit) in enumerate(tpl.params, start=1)
                       if "${" + p + "}" not in text and "{" + str(i) + "}" not in text]
            if missing:
                raise DomainError("template_params", _("模板“%(t)s”缺少参数：%(p)s", t=template_label(name),
                                                       p=", ".join(missing)))
            if worst_case_segments(signature, name, text) > MAX_SEGMENTS:
                raise DomainError("template_long", _("模板“%(t)s”最长会超过 %(n)d 条短信，请缩短", t=template_label(name),
                                                     n=MAX_SEGMENTS))
        values[f"sms_tpl_{name}_code"], values[f"sms_tpl_{name}_text"] = code, text
    if values["sms_enabled"] == "1" and not signature:
        raise DomainError("required", _("启用短信前请填写短信签名"))
    for key, value in values.items():
        cs.put(session, key, value, by=by)
    session.commit()
