"""Thin, typed Telegram handlers: each one asks `services` and answers in Chinese."""
from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler,
                          filters)

from bot import texts
from bot.bridge import Bridge
from services.checkin import upcoming_shifts
from services.errors import DomainError
from services.events import set_assignment_status
from services.hours import current_hours, hours, recent_attendances
from services.i18n import _
from services.messaging import Audience, ChatPerson, chat_person, link_chat, on_patrol_lines, preview_notice, send_notice
from services.signin import issue_login_link
from services.surveys import add_comment, answer, awaiting_comment, get_round, survey_buttons

log = logging.getLogger(__name__)
ZONE_FMT = "%m-%d %H:%M"


def _bridge(context: ContextTypes.DEFAULT_TYPE) -> Bridge:
    return context.application.bot_data["bridge"]


def _markup(rows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(b["text"], callback_data=b["data"]) for b in row]
                                 for row in rows])


def _local(dt, bridge: Bridge) -> str:
    from zoneinfo import ZoneInfo
    return dt.astimezone(ZoneInfo(bridge.config["TIMEZONE"])).strftime(ZONE_FMT)


async def _person(update: Update, context: ContextTypes.DEFAULT_TYPE) -> ChatPerson | None:
    person = await _bridge(context).run(chat_person, update.effective_chat.id)
    if person is None and update.effective_message is not None:
        await update.effective_message.reply_text(texts.unlinked())
    return person


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    bridge = _bridge(context)
    if context.args:
        try:
            person = await bridge.run(link_chat, context.args[0], chat_id=update.effective_chat.id,
                                      username=update.effective_user.username if update.effective_user else None)
        except DomainError as exc:
            await update.effective_message.reply_text(exc.message)
            return
        await update.effective_message.reply_text(
            _("%(name)s，您好！Telegram 已与平安马甲绑定，巡逻提醒和通知会发到这里。", name=person.name)
            + "\n\n" + texts.help_text(person.kind, person.role))
        return
    person = await _person(update, context)
    if person is not None:
        await update.effective_message.reply_text(_("%(name)s，您好！", name=person.name) + "\n"
                                                  + texts.help_text(person.kind, person.role))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is not None:
        await update.effective_message.reply_text(texts.help_text(person.kind, person.role))


async def hours_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None:
        return
    if person.kind != "volunteer":
        await update.effective_message.reply_text(_("这个命令给志愿者用。"))
        return
    bridge = _bridge(context)
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo
    summary = await bridge.run(current_hours, person.id, datetime.now(timezone.utc), ZoneInfo(bridge.config["TIMEZONE"]))
    year = summary.year
    recent = await bridge.run(recent_attendances, person.id, 3)
    lines = [_("%(y)d 年已累计 %(h).1f 小时（目标 %(t).0f 小时）", y=year, h=summary.total, t=summary.target_hours),
             _("扫码 %(a).1f · 导入 %(b).1f · 人工 %(c).1f", a=summary.verified, b=summary.imported, c=summary.adjusted)]
    if summary.met:
        lines.append(_("已达到全年目标，谢谢您！"))
    else:
        lines.append(_("还差 %(h).1f 小时。", h=max(0.0, summary.target_hours - summary.total)))
    if recent:
        lines.append(_("最近巡逻："))
        for a in recent:
            lines.append(f"· {_local(a.check_in_at, bridge)} {a.point_name or a.event_name or ''} "
                         + (_("进行中") if a.status == "open" else f"{hours(a.credited_minutes):.1f} h"))
    await update.effective_message.reply_text("\n".join(lines))


async def shifts_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None or person.kind != "volunteer":
        return
    bridge = _bridge(context)
    shifts = await bridge.run(upcoming_shifts, person.id)
    if not shifts:
        await update.effective_message.reply_text(_("您近期没有安排的班次。"))
        return
    for s in shifts[:5]:
        await update.effective_message.reply_text(
            f"{s.event_name}\n{_local(s.starts_at, bridge)}–{_local(s.ends_at, bridge)[-5:]} · {s.point_name}",
            reply_markup=_markup([[{"text": _("确认"), "data": f"sh:c:{s.id}"},
                                   {"text": _("请假"), "data": f"sh:d:{s.id}"}]]))


async def shift_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    person = await _bridge(context).run(chat_person, update.effective_chat.id)
    if person is None or person.kind != "volunteer":
        return
    _prefix, action, shift_id = query.data.split(":")
    try:
        status = await _bridge(context).run(set_assignment_status, int(shift_id), person.id,
                                            "confirmed" if action == "c" else "declined")
    except DomainError as exc:
        await query.edit_message_text(exc.message)
        return
    word = _("已确认参加") if status == "confirmed" else _("已请假，平安办会另行安排")
    await query.edit_message_text(f"{query.message.text}\n\n✓ {word}")


async def login_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None or person.kind != "volunteer":
        return
    bridge = _bridge(context)
    try:
        issued = await bridge.run(issue_login_link, person.id, base_url=bridge.config["PUBLIC_BASE_URL"],
                                  created_by="bot", valid_days=bridge.config["LOGIN_LINK_DAYS"])
    except DomainError as exc:
        await update.effective_message.reply_text(exc.message)
        return
    await update.effective_message.reply_text(
        _("请用要登录的手机打开下面的链接，点“确认登录”（链接只能用一次）：") + "\n" + issued.url)


async def survey_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None or person.kind != "volunteer":
        return
    try:
        r = await _bridge(context).run(get_round)
    except DomainError as exc:
        await update.effective_message.reply_text(exc.message)
        return
    await update.effective_message.reply_text(f"{r.name}\n{r.question}", reply_markup=_markup(survey_buttons(r.id)))


async def survey_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    person = await _bridge(context).run(chat_person, update.effective_chat.id)
    if person is None or person.kind != "volunteer":
        return
    _prefix, round_id, score = query.data.split(":")
    try:
        label = await _bridge(context).run(answer, int(round_id), person.id, int(score), channel="telegram")
    except DomainError as exc:
        await query.edit_message_text(exc.message)
        return
    await query.edit_message_text(_("已记录您的评价：%(l)s（%(s)s 分）。谢谢！\n如有意见或建议，可以直接回复一句话（可选）；想改评价可再发 /survey。",
                                    l=label, s=score))


async def notice_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None:
        return
    if person.kind != "coordinator" or person.role not in ("admin", "coordinator"):
        await update.effective_message.reply_text(_("只有平安办协调员可以发通知。"))
        return
    text = update.effective_message.text.partition(" ")[2].strip()
    if not text:
        await update.effective_message.reply_text(_("用法：/notice 通知内容（例如：今晚 19:00–22:00 浦锦路烟花摊点加强巡逻）"))
        return
    preview = await _bridge(context).run(preview_notice, Audience("all"))
    draft_id = str(update.effective_message.message_id)
    context.chat_data.setdefault("drafts", {})[draft_id] = text
    await update.effective_message.reply_text(
        _("将发送给 %(n)d 名在册志愿者（其中 %(l)d 人已绑定 Telegram，其余在网页收件箱查看）：", n=preview.recipients,
          l=preview.linked) + "\n\n" + text,
        reply_markup=_markup([[{"text": _("发送"), "data": f"nt:s:{draft_id}"},
                               {"text": _("取消"), "data": f"nt:c:{draft_id}"}]]))


async def notice_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    person = await _bridge(context).run(chat_person, update.effective_chat.id)
    if person is None or person.kind != "coordinator" or person.role not in ("admin", "coordinator"):
        return
    _prefix, action, draft_id = query.data.split(":")
    text = context.chat_data.get("drafts", {}).get(draft_id)
    if action == "c" or text is None:
        await query.edit_message_text(_("已取消。") if action == "c" else _("草稿已失效，请重新发送 /notice。"))
        return
    # The preview message identifies the draft: pressing 发送 twice sends once.
    nonce = f"tg:{update.effective_chat.id}:{query.message.message_id}"
    try:
        result = await _bridge(context).run(send_notice, text=text, audience=Audience("all"), nonce=nonce,
                                            created_by_user_id=person.id)
    except DomainError as exc:
        await query.edit_message_text(exc.message)
        return
    await query.edit_message_text(_("已发送给 %(n)d 人：", n=result.recipients) + "\n\n" + text)


async def onpatrol_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None:
        return
    if person.kind != "coordinator":
        await update.effective_message.reply_text(_("只有平安办协调员和队长可以查看。"))
        return
    bridge = _bridge(context)
    lines = await bridge.run(on_patrol_lines)
    if not lines:
        await update.effective_message.reply_text(_("现在没有人在岗。"))
        return
    body = "\n".join(f"· {ln.name} — {ln.point_name or ''}（{_local(ln.since, bridge)[-5:]}）" for ln in lines[:80])
    more = _("\n……共 %(n)d 人", n=len(lines)) if len(lines) > 80 else ""
    await update.effective_message.reply_text(_("在岗 %(n)d 人：", n=len(lines)) + "\n" + body + more)


async def text_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None:
        return
    if person.kind == "volunteer":
        round_id = await _bridge(context).run(awaiting_comment, person.id)
        if round_id is not None:
            await _bridge(context).run(add_comment, round_id, person.id, update.effective_message.text)
            await update.effective_message.reply_text(_("已收到您的意见，谢谢！"))
            return
    await update.effective_message.reply_text(texts.help_text(person.kind, person.role))


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("bot handler failed", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            await update.effective_message.reply_text(_("抱歉，出错了，请稍后再试。"))
        except Exception:  # the reply is best effort; the error is already logged
            pass


def register(application: Application) -> None:
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("hours", hours_command))
    application.add_handler(CommandHandler("shifts", shifts_command))
    application.add_handler(CommandHandler("login", login_command))
    application.add_handler(CommandHandler("survey", survey_command))
    application.add_handler(CommandHandler("notice", notice_command))
    application.add_handler(CommandHandler("onpatrol", onpatrol_command))
    application.add_handler(CallbackQueryHandler(survey_button, pattern=r"^sv:\d+:[1-5]$"))
    application.add_handler(CallbackQueryHandler(shift_button, pattern=r"^sh:[cd]:\d+$"))
    application.add_handler(CallbackQueryHandler(notice_button, pattern=r"^nt:[sc]:\d+$"))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text_message))
    application.add_error_handler(error_handler)



