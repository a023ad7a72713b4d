"""The bot's words (Chinese first; they go through the same gettext as the web)."""
from __future__ import annotations

from services.i18n import _

# Telegram refuses a message longer than this (in UTF-16 units; Chinese characters count one).
TELEGRAM_MAX = 4096

VOLUNTEER_ONLY = ("hours", "shifts", "login", "survey")
COORDINATOR_ONLY = ("notice", "onpatrol")


def commands_for(kind: str | None, role: str | None) -> list[tuple[str, str]]:
    """(command, description): the menu each linked chat sees (set_my_commands per chat)."""
    if kind == "coordinator":
        if role in ("admin", "coordinator"):
            return [("notice", _("发巡逻通知")), ("onpatrol", _("现在谁在岗")), ("help", _("帮助"))]
        return [("onpatrol", _("现在谁在岗")), ("help", _("帮助"))]
    return [("hours", _("我的巡逻时长")), ("shifts", _("我的班次（确认或请假）")), ("login", _("网页登录链接")),
            ("survey", _("满意度调查")), ("help", _("帮助"))]


def fit(text: str) -> str:
    """Never more than Telegram takes: a cut message says it was cut."""
    if len(text) <= TELEGRAM_MAX:
        return text
    tail = "\n……" + _("（内容过长，已截断）")
    return text[:TELEGRAM_MAX - len(tail)] + tail


def unlinked() -> str:
    return _("您好！这里是浦锦街道“平安马甲”志愿者机器人。\n"
             "请先绑定：在平安马甲网页“我的”页面点“绑定 Telegram”，再点开链接即可。\n"
             "（没有网页登录？请联系平安办。）")


def private_only() -> str:
    return _("为保护个人信息，机器人只在私聊中使用。请点开机器人，和它单独对话。")


def _call_office(phone: str) -> str:
    return (_("紧急情况请直接打电话给平安办：%(p)s。", p=phone) if phone
            else _("紧急情况请直接打电话给平安办。"))


def cannot_help(kind: str | None, phone: str) -> str:
    """The one honest answer to anything the bot cannot act on (free text, photos, stickers…)."""
    lines = [_("这是自动回复：机器人无法转达消息，平安办不会在这里看到您发的内容。"), _call_office(phone)]
    if kind == "volunteer":
        lines.append(_("请假：发送 /shifts，在班次下面点“请假”。"))
    lines.append(_("发送 /help 查看可用的命令。"))
    return "\n".join(lines)


def other_role(command: str, kind: str) -> str:
    """A command meant for the other role: say what it is for instead of staying silent."""
    if command in VOLUNTEER_ONLY:
        what = {"hours": _("/hours 是志愿者查看自己巡逻时长的命令。"),
                "shifts": _("/shifts 是志愿者查看、确认自己班次或请假的命令。"),
                "login": _("/login 是志愿者获取网页登录链接的命令。"),
                "survey": _("/survey 是志愿者回答满意度调查的命令。")}[command]
        return what + "\n" + _("您绑定的是平安办账号，请在平安马甲网页上查看。发送 /help 查看您可用的命令。")
    what = {"notice": _("/notice 是平安办协调员给志愿者发巡逻通知的命令。"),
            "onpatrol": _("/onpatrol 是平安办和队长查看现在谁在岗的命令。")}[command]
    if kind == "volunteer":
        return what + "\n" + _("您是志愿者，不能使用。发送 /help 查看您可用的命令。")
    return what + "\n" + _("您的账号没有这个权限。发送 /help 查看您可用的命令。")


def help_text(kind: str, role: str | None) -> str:
    lines = [_("可用的命令：")]
    if kind == "volunteer":
        lines += [_("/hours 我今年的巡逻时长"), _("/shifts 我的班次（可确认或请假）"),
                  _("/login 获取新的网页登录链接（换手机时用）"), _("/survey 回答满意度调查")]
    else:
        if role in ("admin", "coordinator"):
            lines += [_("/notice 内容 —— 给全体在册志愿者发巡逻通知（会先预览确认）")]
        lines += [_("/onpatrol 现在谁在岗")]
    lines.append(_("/help 显示本说明"))
    return "\n".join(lines)
