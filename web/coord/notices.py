"""Coordinator pages: patrol notices (compose, preview, send, delivery status) and surveys."""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from extensions import db
from models.event import Event
from models.point import PatrolPoint
from models.messaging import Message, MessageRecipient
from services.channels.costs import message_sms_cost
from services.errors import DomainError
from services.i18n import _
from services.messaging import (AUDIENCE_KINDS, DELIVERY_FILTERS, MISSING_GRACE_MINUTES, Audience, chat_link_of,
                                check_notice_text, delivery_counts, delivery_page, delivery_summary, issue_chat_link,
                                message_reach, preview_notice, push_channels_exist, reach_text, resend_unread,
                                send_notice, sender_line, shift_choices, team_posts, telegram_text, unlink_chat)
from services.surveys import create_round, list_rounds, remind_round, results, send_round
from services.volunteers import teams
from web.auth import current_user
from web.coord import protect, qr_data_uri
from web.messaging_helpers import bot_username
from web.params import db_int
from web.runtime import clock

bp = protect(Blueprint("coord_notices", __name__, url_prefix="/coord/notices"))


def _audience() -> Audience:
    kind = request.form.get("audience", "all")
    if kind not in AUDIENCE_KINDS:
        raise DomainError("bad_audience", _("未知的发送对象"))
    value = {"team": request.form.get("team"), "event": request.form.get("event_id"),
             "shift": request.form.get("shift_id"), "point": request.form.get("point_id")}.get(kind)
    if kind in ("team", "event", "shift", "point") and not value:
        raise DomainError("bad_audience", _("请选择发送对象"))
    if kind in ("event", "shift", "point") and not str(value).isdigit():
        raise DomainError("bad_audience", _("请从列表中选择"))
    return Audience(kind, value, grace_minutes=int(current_app.config.get("BOARD_MISSING_GRACE_MINUTES", MISSING_GRACE_MINUTES)))


def _compose(status: int = 200, **extra):
    events = db.session.scalars(select(Event).order_by(Event.starts_on.desc())).all()
    points = db.session.scalars(select(PatrolPoint).where(PatrolPoint.active.is_(True)).order_by(PatrolPoint.code)).all()
    return render_template("coord/notices/new.html", teams=teams(db.session), events=events, points=points,
                           shifts=shift_choices(db.session, clock=clock()), form=request.form, **extra), status


@bp.get("/")
def index():
    rows = db.session.execute(select(Message, func.count(MessageRecipient.id))
                              .join(MessageRecipient, MessageRecipient.message_id == Message.id)
                              .group_by(Message.id).order_by(Message.created_at.desc()).limit(100)).all()
    return render_template("coord/notices/index.html", rows=rows)


@bp.get("/new")
def new():
    return _compose()


@bp.post("/preview")
def preview():
    try:
        audience = _audience()
        text = check_notice_text(request.form.get("text"))
        summary = preview_notice(db.session, audience, clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return _compose(400)
    # The nonce is minted here: sending the same preview twice (double click, back button,
    # resubmitted form) sends once, while composing the same text again is a new notice.
    title = (request.form.get("title") or "").strip() or _("巡逻通知")
    phone_text = telegram_text(title, text + "\n\n—— " + sender_line(db.session, current_user().id))
    return render_template("coord/notices/preview.html", summary=summary, text=text, form=request.form,
                           nonce=uuid.uuid4().hex, phone_text=phone_text)


@bp.post("/send")
def send():
    try:
        result = send_notice(db.session, text=request.form.get("text", ""), audience=_audience(),
                             nonce=request.form.get("nonce", ""), created_by_user_id=current_user().id,
                             title=(request.form.get("title") or "").strip() or None, clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return _compose(400)
    if result.created:
        flash(reach_text(message_reach(db.session, result.message_id)), "success")
    else:
        flash(_("这条通知已经发送过了（重复提交不会重复发送）"), "success")
    return redirect(url_for(".detail", message_id=result.message_id))


@bp.get("/<int:message_id>")
def detail(message_id: int):
    message = db.session.get(Message, message_id)
    if message is None:
        raise DomainError("not_found", _("消息不存在"))
    show = request.args.get("show", "all")
    show = show if show in DELIVERY_FILTERS else "all"
    # A page at a time: a notice to 50,000 people must not render 50,000 rows.
    page = delivery_page(db.session, message_id, show=show, page=request.args.get("page", 1, type=db_int))
    counts = delivery_counts(db.session, message_id)
    return render_template("coord/notices/detail.html", message=message, rows=page.rows, page=page, show=show,
                           summary=delivery_summary(counts), counts=counts,
                           posts=team_posts(db.session, message_id), sms=message_sms_cost(db.session, message_id),
                           nonce=uuid.uuid4().hex, can_push=push_channels_exist(db.session))


@bp.post("/<int:message_id>/resend")
def resend(message_id: int):
    """Resend to the recipients who have not read it, each on a channel not tried yet."""
    try:
        result = resend_unread(db.session, message_id, nonce=request.form.get("nonce", ""), clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".detail", message_id=message_id))
    flash(_("已通过其他渠道重发给 %(n)d 人；%(m)d 人没有其他渠道，只能在网页消息中看到。", n=result.queued,
            m=result.no_other_channel), "success")
    return redirect(url_for(".detail", message_id=message_id, show="unread"))


# --- surveys ---------------------------------------------------------------------------------------

@bp.get("/surveys")
def surveys():
    return render_template("coord/notices/surveys.html",
                           rounds=[(r, results(db.session, r.id)) for r in list_rounds(db.session)])


@bp.post("/surveys")
def survey_create():
    try:
        create_round(db.session, request.form.get("name", ""), question=request.form.get("question"), clock=clock())
        flash(_("已创建调查轮次"), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".surveys"))


@bp.post("/surveys/<int:round_id>/send")
def survey_send(round_id: int):
    remind = request.form.get("remind") == "1"
    try:
        result = (remind_round if remind else send_round)(db.session, round_id, clock=clock())
        flash(reach_text(message_reach(db.session, result.message_id)) if result.created
              else _("已经发送过，不会重复发送"), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".surveys"))


# --- Telegram links ----------------------------------------------------------------------------------

@bp.post("/telegram/volunteer/<int:volunteer_id>")
def link_volunteer(volunteer_id: int):
    try:
        url = issue_chat_link(db.session, bot_username=bot_username(), volunteer_id=volunteer_id, clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("coord_volunteers.detail", volunteer_id=volunteer_id))
    return render_template("coord/notices/telegram.html", url=url, qr=qr_data_uri(url),
                           back=url_for("coord_volunteers.detail", volunteer_id=volunteer_id))


@bp.post("/telegram/volunteer/<int:volunteer_id>/unlink")
def unlink_volunteer(volunteer_id: int):
    unlink_chat(db.session, volunteer_id=volunteer_id, clock=clock())
    flash(_("已解除 Telegram 绑定"), "success")
    return redirect(url_for("coord_volunteers.detail", volunteer_id=volunteer_id))


@bp.route("/telegram/me", methods=["GET", "POST"])
def link_me():
    user = current_user()
    if request.method == "POST":
        if request.form.get("unlink") == "1":
            unlink_chat(db.session, user_id=user.id, clock=clock())
            flash(_("已解除 Telegram 绑定"), "success")
            return redirect(url_for(".link_me"))
        try:
            url = issue_chat_link(db.session, bot_username=bot_username(), user_id=user.id, clock=clock())
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".link_me"))
        return render_template("coord/notices/telegram.html", url=url, qr=qr_data_uri(url), back=url_for(".link_me"))
    return render_template("coord/notices/telegram_me.html", link=chat_link_of(db.session, user_id=user.id),
                           bot=bot_username())


