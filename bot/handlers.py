"""Thin, typed Telegram handlers: each one asks `services` and answers in Chinese.

Rules every handler keeps (the bot is a volunteer's front desk):
- it acts for the person who sent the update (`effective_user.id` matched to their linked private
  chat), never for the chat; outside a private chat it does nothing personal at all;
- every button press is answered exactly once, and its message is edited to say what is true now,
  so a second press (Telegram: "message is not modified") gets a short toast, not an error;
- every message gets an answer: what the bot cannot act on gets the honest "cannot pass this on,
  call the office" reply.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from telegram import (BotCommand, BotCommandScopeChat, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup,
                      Update)
from telegram.error import BadRequest
from telegram.ext import (Application, ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, ContextTypes,
                          MessageHandler, TypeHandler, filters)

from bot import texts
from bot.bridge import Bridge
from services.assignments import IN_PROGRESS, MyShift, confirm_shift, my_shifts, office_phone, request_leave, undo_leave
from services.errors import DomainError
from services.hours import current_hours, hours, hours_text, recent_attendances
from services.i18n import _
from services.messaging import (ChatPerson, chat_person, link_chat, on_patrol_lines, reach_text, sender_line,
                                shift_buttons)
from services.notice_drafts import DraftView, cancel_draft, create_draft, get_draft, send_draft
from services.signin import issue_login_link
from services.surveys import (COMMENT_WINDOW, add_comment, awaiting_comment, comment_buttons, get_round,
                              record_answer, skip_comment, survey_buttons)

log = logging.getLogger(__name__)
ZONE_FMT = "%m-%d %H:%M"
STATUS_MARK = "\n\n▶ "


def _bridge(context: ContextTypes.DEFAULT_TYPE) -> Bridge:
    return context.application.bot_data["bridge"]


def _markup(rows) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b["text"], callback_data=b["data"]) for b in row]
                                 for row in rows])


def _zone(bridge: Bridge) -> ZoneInfo:
    return ZoneInfo(bridge.config["TIMEZONE"])


def _local(dt: datetime, bridge: Bridge, *, with_year: bool = False) -> str:
    return dt.astimezone(_zone(bridge)).strftime("%Y-%m-%d %H:%M" if with_year else ZONE_FMT)


async def _reply(update: Update, text: str, rows=None) -> None:
    await update.effective_message.reply_text(texts.fit(text), reply_markup=_markup(rows))


async def _sender(update: Update, context: ContextTypes.DEFAULT_TYPE) -> ChatPerson | None:
    """The person who sent this update: their Telegram user id is the chat they linked in private."""
    user = update.effective_user
    if user is None:
        return None
    return await _bridge(context).run(chat_person, user.id)


async def _person(update: Update, context: ContextTypes.DEFAULT_TYPE) -> ChatPerson | None:
    person = await _sender(update, context)
    if person is None and update.effective_message is not None:
        await _reply(update, texts.unlinked())
    return person


async def _settle(query: CallbackQuery, text: str, rows=None, *, toast: str | None = None, alert: bool = False) -> None:
    """Edit a button's message to what is true now and answer the press once.

    A second press finds the message already saying so: Telegram answers 400 "message is not
    modified", which is not an error here, only a reason for a short toast.
    """
    try:
        await query.edit_message_text(texts.fit(text), reply_markup=_markup(rows))
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
        await query.answer(toast or _("已经处理过了"), show_alert=alert)
        return
    await query.answer(toast, show_alert=alert)


async def _set_menu(context: ContextTypes.DEFAULT_TYPE, chat_id: int, person: ChatPerson) -> None:
    """This chat's command menu lists this person's commands only."""
    try:
        await context.bot.set_my_commands([BotCommand(c, d) for c, d in texts.commands_for(person.kind, person.role)],
                                          scope=BotCommandScopeChat(chat_id))
    except Exception:  # cosmetic: a failed menu must not fail the conversation
        log.warning("set_my_commands for a chat failed", exc_info=True)


# --- outside private chats ------------------------------------------------------------------------

async def private_only_guard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In a group the bot answers nothing personal and no command works: it says where to go."""
    chat = update.effective_chat
    if chat is None or chat.type == "private":
        return
    if update.callback_query is not None:
        await update.callback_query.answer(texts.private_only(), show_alert=True)
    elif update.effective_message is not None and (update.effective_message.text or "").startswith("/"):
        await update.effective_message.reply_text(texts.private_only())
    raise ApplicationHandlerStop


# --- linking and help -----------------------------------------------------------------------------

async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    bridge = _bridge(context)
    if context.args:
        try:
            person = await bridge.run(link_chat, context.args[0], chat_id=update.effective_user.id,
                                      username=update.effective_user.username)
        except DomainError as exc:
            await _reply(update, exc.message)
            return
        await _set_menu(context, update.effective_chat.id, person)
        await _reply(update, _("%(name)s，您好！Telegram 已与平安马甲绑定，巡逻提醒和通知会发到这里。", name=person.name)
                     + "\n\n" + texts.help_text(person.kind, person.role))
        return
    person = await _person(update, context)
    if person is not None:
        await _reply(update, _("%(name)s，您好！", name=person.name) + "\n" + texts.help_text(person.kind, person.role))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is not None:
        await _set_menu(context, update.effective_chat.id, person)
        await _reply(update, texts.help_text(person.kind, person.role))


async def _volunteer(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str) -> ChatPerson | None:
    person = await _person(update, context)
    if person is not None and person.kind != "volunteer":
        await _reply(update, texts.other_role(command, person.kind))
        return None
    return person


# --- volunteers -----------------------------------------------------------------------------------

async def hours_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _volunteer(update, context, "hours")
    if person is None:
        return
    bridge = _bridge(context)
    summary = await bridge.run(current_hours, person.id, datetime.now(timezone.utc), _zone(bridge))
    year = summary.year
    recent = await bridge.run(recent_attendances, person.id, 3)
    lines = [_("%(y)d 年已累计 %(h).1f 小时（目标 %(t)s 小时）", y=year, h=summary.total, t=hours_text(summary.target_hours)),
             _("扫码核验 %(a).1f 小时 · 历史导入 %(b).1f 小时 · 人工登记 %(c).1f 小时",
               a=summary.verified, b=summary.imported, c=summary.adjusted)]
    if summary.met:
        lines.append(_("已达到全年目标，谢谢您！"))
    else:
        lines.append(_("还差 %(h).1f 小时。", h=max(0.0, summary.target_hours - summary.total)))
    if recent:
        lines.append(_("最近巡逻："))
        for a in recent:
            mark = {"flagged": " · " + _("待核对"), "rejected": " · " + _("未通过")}.get(a.review_status, "")
            lines.append(f"· {_local(a.check_in_at, bridge)} {a.point_name or a.event_name or ''} "
                         + (_("进行中") if a.status == "open" else _("%(h).1f 小时", h=hours(a.credited_minutes)))
                         + mark)
    await _reply(update, "\n".join(lines))


def _status_line(shift: MyShift) -> str:
    word = {"assigned": _("已安排"), "confirmed": _("已确认"), "declined": _("已请假"),
            IN_PROGRESS: _("进行中")}[shift.status]
    line = _("状态：%(s)s", s=word)
    if shift.status == "declined":
        line += _("（平安办和队长已收到通知；开始前可撤销）")
    return line


def _shift_rows(shift: MyShift):
    if not shift.can_change:
        return None
    if shift.status == "declined":
        return [[{"text": _("撤销请假"), "data": f"sh:u:{shift.shift_id}"}]]
    rows = shift_buttons(shift.shift_id)
    if shift.status == "confirmed":
        rows = [[b for b in rows[0] if b["data"].startswith("sh:d:")]]
    return rows


def _shift_card(shift: MyShift, bridge: Bridge) -> str:
    this_year = datetime.now(_zone(bridge)).year
    with_year = shift.starts_at.astimezone(_zone(bridge)).year != this_year
    return (f"{shift.event_name}\n{_local(shift.starts_at, bridge, with_year=with_year)}–"
            f"{_local(shift.ends_at, bridge)[-5:]} · {shift.point_name}")


async def shifts_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _volunteer(update, context, "shifts")
    if person is None:
        return
    bridge = _bridge(context)
    shifts = await bridge.run(my_shifts, person.id)
    if not shifts:
        await _reply(update, _("您近期没有安排的班次。"))
        return
    for s in shifts[:5]:
        await _reply(update, _shift_card(s, bridge) + STATUS_MARK + _status_line(s), _shift_rows(s))
    if len(shifts) > 5:
        await _reply(update, _("还有 %(n)d 个班次，请在平安马甲网页“我的”页面查看。", n=len(shifts) - 5))


async def shift_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """确认 / 请假 / 撤销请假, from /shifts or from a reminder (whose text is kept above the status)."""
    query = update.callback_query
    person = await _sender(update, context)
    if person is None or person.kind != "volunteer":
        await query.answer(texts.unlinked() if person is None else _("这个按钮给志愿者用。"), show_alert=True)
        return
    _prefix, action, shift_id = query.data.split(":")
    fn = {"c": confirm_shift, "d": request_leave, "u": undo_leave}[action]
    bridge = _bridge(context)
    base = (query.message.text or "").split(STATUS_MARK)[0] if query.message else ""
    try:
        result = await bridge.run(fn, int(shift_id), person.id)
    except DomainError as exc:
        await query.answer(exc.message, show_alert=True)
        if exc.code == "shift_started" and query.message is not None:
            try:  # the buttons go: nothing can be changed any more
                await query.edit_message_text(texts.fit(base + STATUS_MARK + exc.message))
            except BadRequest:
                pass
        return
    shift = result.shift
    toast = None
    if not result.changed:
        toast = _("已经处理过了")
    elif shift.status == "declined":
        toast = _("已请假，平安办会另行安排")
    elif shift.status == "confirmed":
        toast = _("已确认参加") if action == "c" else _("已撤销请假")
    await _settle(query, (base or _shift_card(shift, bridge)) + STATUS_MARK + _status_line(shift), _shift_rows(shift),
                  toast=toast)


async def login_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _volunteer(update, context, "login")
    if person is None:
        return
    bridge = _bridge(context)
    try:
        issued = await bridge.run(issue_login_link, person.id, base_url=bridge.config["PUBLIC_BASE_URL"],
                                  created_by="bot", valid_days=bridge.config["LOGIN_LINK_DAYS"])
    except DomainError as exc:
        await _reply(update, exc.message)
        return
    await _reply(update, _("请用要登录的手机打开下面的链接，点“确认登录”（链接只能用一次）：") + "\n" + issued.url)


async def survey_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _volunteer(update, context, "survey")
    if person is None:
        return
    try:
        r = await _bridge(context).run(get_round)
    except DomainError as exc:
        await _reply(update, exc.message)
        return
    await _reply(update, f"{r.name}\n{r.question}", survey_buttons(r.id))


def _window_minutes() -> int:
    return int(COMMENT_WINDOW.total_seconds() // 60)


async def survey_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    person = await _sender(update, context)
    if person is None or person.kind != "volunteer":
        await query.answer(texts.unlinked() if person is None else _("这个按钮给志愿者用。"), show_alert=True)
        return
    _prefix, round_id, score = query.data.split(":")
    try:
        result = await _bridge(context).run(record_answer, int(round_id), person.id, int(score), channel="telegram")
    except DomainError as exc:
        await _settle(query, exc.message, toast=exc.message)
        return
    if result.comment_until is not None:
        text = _("已记录您的评价：%(l)s（%(s)s 分）。谢谢！\n如有意见或建议，%(m)d 分钟内直接回复即可（可选）；"
                 "想改评价可再发 /survey。", l=result.label, s=score, m=_window_minutes())
        await _settle(query, text, comment_buttons(int(round_id)),
                      toast=None if result.changed else _("已记录过了"))
        return
    # The same score from an old message: nothing changes and no comment window reopens.
    await _settle(query, _("您的评价仍是：%(l)s（%(s)s 分）。想改评价可再发 /survey。", l=result.label, s=score),
                  toast=_("已记录过了"))


async def skip_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    person = await _sender(update, context)
    if person is None or person.kind != "volunteer":
        await query.answer(texts.unlinked() if person is None else _("这个按钮给志愿者用。"), show_alert=True)
        return
    round_id = int(query.data.split(":")[1])
    closed = await _bridge(context).run(skip_comment, round_id, person.id)
    await _settle(query, _("好的，谢谢您的评价！"), toast=None if closed else _("已经处理过了"))


# --- coordinators ---------------------------------------------------------------------------------

def _draft_text(draft: DraftView, signature: str) -> str:
    body = draft.text + "\n\n—— " + signature
    if draft.status == "sent" and draft.reach is not None:
        return reach_text(draft.reach) + "\n\n" + body
    if draft.status == "cancelled":
        return _("已取消，这条通知没有发送。") + "\n\n" + body
    # The same words as the web's preview: how many, and through which channel.
    return (_("将发送给 %(n)d 名在册志愿者：其中 %(l)d 人已绑定 Telegram；先发短信 %(s)d 人；%(w)d 人未绑定任何渠道，只能在网页消息中看到。",
              n=draft.recipients, l=draft.linked, s=draft.by_sms, w=draft.web_only) + "\n\n" + body)


def _draft_rows(draft: DraftView):
    # "nd:" (a stored draft's id), not the old in-memory "nt:" buttons: a button left from before
    # the upgrade must not find a draft by a coincidentally equal number.
    if draft.status != "open":
        return None
    return [[{"text": _("发送"), "data": f"nd:s:{draft.id}"}, {"text": _("取消"), "data": f"nd:c:{draft.id}"}]]


async def notice_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None:
        return
    if person.kind != "coordinator" or person.role not in ("admin", "coordinator"):
        await _reply(update, texts.other_role("notice", person.kind))
        return
    text = (update.effective_message.text or "").partition(" ")[2].strip()
    if not text:
        await _reply(update, _("用法：/notice 通知内容（例如：今晚 19:00–22:00 浦锦路烟花摊点加强巡逻）"))
        return
    bridge = _bridge(context)
    try:
        draft = await bridge.run(create_draft, user_id=person.id, chat_id=update.effective_chat.id, text=text)
    except DomainError as exc:
        # The coordinator's own message stays in the chat above: the text is not lost.
        await _reply(update, exc.message + ("\n" + _("请缩短后重新发送 /notice。") if exc.code == "too_long" else ""))
        return
    signature = await bridge.run(sender_line, person.id)
    await _reply(update, _draft_text(draft, signature), _draft_rows(draft))


async def notice_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    person = await _sender(update, context)
    if person is None or person.kind != "coordinator" or person.role not in ("admin", "coordinator"):
        await query.answer(_("只有平安办协调员可以发通知。"), show_alert=True)
        return
    _prefix, action, draft_id = query.data.split(":")
    bridge = _bridge(context)
    signature = await bridge.run(sender_line, person.id)
    try:
        draft = await bridge.run(send_draft if action == "s" else cancel_draft, int(draft_id), user_id=person.id)
    except DomainError as exc:
        # Refused (发送 after 取消, 取消 after 发送): the message shows the draft's real ending.
        try:
            current = await bridge.run(get_draft, int(draft_id), user_id=person.id)
        except DomainError:
            await _settle(query, exc.message, toast=exc.message, alert=True)
            return
        await _settle(query, _draft_text(current, signature), _draft_rows(current), toast=exc.message, alert=True)
        return
    toast = None if draft.changed else (_("已经发送过了，不会重复发送") if draft.status == "sent" else _("已经取消了"))
    await _settle(query, _draft_text(draft, signature), _draft_rows(draft), toast=toast)


async def onpatrol_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None:
        return
    if person.kind != "coordinator":
        await _reply(update, texts.other_role("onpatrol", person.kind))
        return
    bridge = _bridge(context)
    lines = await bridge.run(on_patrol_lines)
    if not lines:
        await _reply(update, _("现在没有人在岗。"))
        return
    body = "\n".join(f"· {ln.name} — {ln.point_name or ''}（{_local(ln.since, bridge)[-5:]}）" for ln in lines[:80])
    more = _("\n……共 %(n)d 人", n=len(lines)) if len(lines) > 80 else ""
    await _reply(update, _("在岗 %(n)d 人：", n=len(lines)) + "\n" + body + more)


# --- everything else ------------------------------------------------------------------------------

async def _cannot_help(update: Update, context: ContextTypes.DEFAULT_TYPE, person: ChatPerson) -> None:
    phone = await _bridge(context).run(office_phone)
    await _reply(update, texts.cannot_help(person.kind, phone))


async def text_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    person = await _person(update, context)
    if person is None:
        return
    if person.kind == "volunteer":
        bridge = _bridge(context)
        round_id = await bridge.run(awaiting_comment, person.id)
        if round_id is not None:
            try:
                await bridge.run(add_comment, round_id, person.id, update.effective_message.text, channel="telegram")
            except DomainError as exc:   # the round's comments are full: say so, not "出错了"
                await _reply(update, exc.message)
                return
            await _reply(update, _("已收到您的意见，谢谢！%(m)d 分钟内还可以继续补充；写完了请点“完成”。",
                                   m=_window_minutes()),
                         [[{"text": _("完成"), "data": f"sk:{round_id}"}]])
            return
    await _cannot_help(update, context, person)


async def other_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Photos (with or without a caption), stickers, voice, locations, files, unknown commands."""
    person = await _person(update, context)
    if person is not None:
        await _cannot_help(update, context, person)


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button from an older version of the bot: answered, never left spinning."""
    await update.callback_query.answer(_("这个按钮已失效，请重新发送命令。"), show_alert=True)


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("bot handler failed", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(_("抱歉，出错了，请稍后再试。"), show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(_("抱歉，出错了，请稍后再试。"))
    except Exception:  # the reply is best effort; the error is already logged
        pass


def register(application: Application) -> None:
    application.add_handler(TypeHandler(Update, private_only_guard), group=-1)
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("hours", hours_command))
    application.add_handler(CommandHandler("shifts", shifts_command))
    application.add_handler(CommandHandler("login", login_command))
    application.add_handler(CommandHandler("survey", survey_command))
    application.add_handler(CommandHandler("notice", notice_command))
    application.add_handler(CommandHandler("onpatrol", onpatrol_command))
    application.add_handler(CallbackQueryHandler(survey_button, pattern=r"^sv:\d+:[1-5]$"))
    application.add_handler(CallbackQueryHandler(skip_button, pattern=r"^sk:\d+$"))
    application.add_handler(CallbackQueryHandler(shift_button, pattern=r"^sh:[cdu]:\d+$"))
    application.add_handler(CallbackQueryHandler(notice_button, pattern=r"^nd:[sc]:\d+$"))
    application.add_handler(CallbackQueryHandler(stale_button))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text_message))
    application.add_handler(MessageHandler(~filters.StatusUpdate.ALL, other_message))
    application.add_error_handler(error_handler)
