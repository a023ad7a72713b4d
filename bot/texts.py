"""The bot's words (Chinese first; they go through the same gettext as the web)."""
from __future__ import annotations

from services.i18n import _


def unlinked() -> str:
    return _("您好！这里是浦锦街道“平安马甲”志愿者机器人。\n"
             "请先绑定：在平安马甲网页“我的”页面点“绑定 Telegram”，再点开链接即可。\n"
             "（没有网页登录？请联系平安办。）")


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
