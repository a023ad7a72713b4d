"""The SMS templates the service uses.

Why templates: mainland providers only deliver a text the carrier has approved in advance, with
the variable parts passed as parameters. The office registers each template below with its provider
(Alibaba Cloud writes `${name}`, Tencent Cloud `{1}`, `{2}` … in the order listed) and enters the
approved text and code on /admin/messaging: the text is needed to count segments and so the cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services.channels import settings as cs
from services.i18n import _

SINGLE_SEGMENT = 70     # characters, signature included
MULTI_SEGMENT = 67      # characters per segment once a message is split


@dataclass(frozen=True)
class SmsTemplate:
    name: str
    params: tuple[tuple[str, int], ...]   # (parameter, maximum length); order = Tencent's {1}, {2} …
    sample: str                           # a text to register with the provider (Alibaba Cloud style)


TEMPLATES: dict[str, SmsTemplate] = {t.name: t for t in (
    SmsTemplate("shift_reminder", (("time", 20), ("place", 20), ("link", 40)),
                "您有平安巡逻班次：${time}，地点${place}。到岗请扫点位二维码签到，详情${link}"),
    SmsTemplate("patrol_notice", (("title", 20), ("link", 40)),
                "平安办通知：${title}，请点${link}查看全文。"),
    SmsTemplate("survey_invite", (("name", 20), ("link", 40)),
                "平安志愿者满意度调查（${name}）：点${link}一键作答，约5秒。"),
    SmsTemplate("signin_link", (("link", 40),),
                "您的平安马甲登录链接：${link}，请勿转发。"),
    SmsTemplate("signin_code", (("code", 6),),
                "您的平安马甲登录验证码：${code}，5分钟内有效。请勿告诉他人。"),
)}


def template_label(name: str) -> str:
    return {"shift_reminder": _("班次提醒"), "patrol_notice": _("巡逻通知"), "survey_invite": _("满意度调查邀请"),
            "signin_link": _("网页登录链接"), "signin_code": _("登录验证码")}.get(name, name)


# Which template carries which kind of message; other kinds go by Telegram and the web inbox only.
KIND_TEMPLATES = {"notice": "patrol_notice", "reminder": "shift_reminder", "survey": "survey_invite"}


def clip_params(template: str, params: dict[str, str]) -> dict[str, str]:
    """Parameters cut to the template's limits (providers refuse longer ones)."""
    tpl = TEMPLATES[template]
    out = {}
    for name, limit in tpl.params:
        value = " ".join(str(params.get(name) or "").split())
        out[name] = value if len(value) <= limit else value[:limit - 1] + "…"
    return out


def render(text: str, template: str, params: dict[str, str]) -> str:
    """The approved text with its parameters filled in (both providers' placeholder styles)."""
    for index, (name, _limit) in enumerate(TEMPLATES[template].params, start=1):
        value = params.get(name, "")
        text = text.replace("${" + name + "}", value).replace("{" + str(index) + "}", value)
    return text


def segments(signature: str, text: str) -> int:
    """Billed segments: 70 characters fit one SMS; a longer one is split into 67-character parts."""
    length = len(f"【{signature}】{text}") if signature else len(text)
    return 1 if length <= SINGLE_SEGMENT else math.ceil(length / MULTI_SEGMENT)


@dataclass(frozen=True)
class TemplateConfig:
    name: str
    code: str
    text: str

    @property
    def ready(self) -> bool:
        return bool(self.code and self.text)


def template_config(session: Session, name: str) -> TemplateConfig:
    return TemplateConfig(name, cs.get(session, f"sms_tpl_{name}_code").strip(), cs.get(session, f"sms_tpl_{name}_text"))


def sms_ready(session: Session, template: str | None = None) -> bool:
    """SMS is on, the signature is set, and (for a template) its code and text are entered."""
    if cs.get(session, "sms_enabled") != "1" or not cs.get(session, "sms_signature").strip():
        return False
    return template is None or template_config(session, template).ready
