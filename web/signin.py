"""Volunteer sign-in on a phone: one-time links, the card's QR, phone + PIN, phone + SMS code; "my page"."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, session, url_for

from extensions import db, limiter
from keys import code_signer
from services.tokens import CARD
from services.errors import DomainError
from services.i18n import _
from services.settings import SELF_SERVICE_SIGNIN, get_bool
from services.phones import normalise_phone
from services.signin import (SMS_CODE, confirm_login_link, may_link_chat, peek_login_link, resolve_card,
                             revoke_device, self_service_sign_in, send_sign_in_code, sign_in_with_card,
                             sms_sign_in_ready)
from services.sms.providers import sms_configured
from services.checkin import open_attendance, upcoming_shifts
from services.messaging import chat_link_of, inbox, issue_chat_link, mark_read, unlink_chat, unread_count
from services.surveys import SCALE, add_comment, answer, comments, list_rounds, my_answer, survey_for
from services.assignments import confirm_shift, my_shifts, office_phone, request_leave, undo_leave
from web.coord import qr_data_uri
from web.messaging_helpers import bot_username
from services.hours import current_hours, recent_attendances
from web.auth import current_device_id, current_volunteer, safe_next, set_device_cookie
from web.params import ids as parse_ids
from web.runtime import clock, now, scan_rules

bp = Blueprint("signin", __name__)


def _signed_in(result, next_url: str):
    # Back to the poster the volunteer scanned before signing in, if any.
    pending = session.pop("after_signin", None)
    if pending and next_url == url_for("signin.me"):
        next_url = safe_next(pending, next_url)
    resp = make_response(redirect(next_url))
    set_device_cookie(resp, result.device_secret)
    flash(_("%(name)s，您好！这部手机已登录，以后扫码即可签到。", name=result.volunteer_name), "success")
    return resp


def _refused(exc: DomainError, status: int = 400):
    return render_template("volunteer/refused.html", error=exc), status


def _failed(response) -> bool:
    """Only failures count against an address: at a 居委 card hand-out thirty phones sign in from
    one Wi-Fi within a minute, and guessing is bounded by the failure counts kept in the database."""
    return response.status_code >= 400


@bp.get("/login/<token>")
def link(token: str):
    """Show the link's owner and a confirm button; opening the URL never uses it up."""
    try:
        view = peek_login_link(db.session, token)
    except DomainError as exc:
        return _refused(exc, 404)
    return render_template("volunteer/confirm.html", view=view, next=safe_next(request.args.get("next"), ""),
                           kind="link")


@bp.post("/login/<token>")
@limiter.limit("20 per minute", deduct_when=_failed)
def link_confirm(token: str):
    try:
        result = confirm_login_link(db.session, token, user_agent=request.headers.get("User-Agent"))
    except DomainError as exc:
        return _refused(exc, 410 if exc.code in ("link_used", "link_expired", "link_revoked")
                        else 404 if exc.code == "link_invalid" else 400)
    return _signed_in(result, safe_next(request.form.get("next"), url_for("signin.me")))


@bp.get("/card/<code>")
def card(code: str):
    try:
        vol = resolve_card(db.session, code_signer(), code)
    except DomainError as exc:
        return _refused(exc, 404 if exc.code == "bad_token" else 410)
    return render_template("volunteer/confirm.html", name=vol.name, next=safe_next(request.args.get("next"), ""),
                           kind="card")


def _card_key() -> str:
    """The card itself, not the URL's spelling of it: the signature check forgives padding zeros
    and spaces, and each spelling would otherwise get a budget of its own."""
    code = (request.view_args or {}).get("code", "")
    try:
        signed = code_signer().verify(CARD, code)
    except DomainError:
        return "card-code:" + code[:200]
    return f"card:{signed.object_id}"


@bp.post("/card/<code>")
@limiter.limit("20 per minute", deduct_when=_failed)
# Per card, every sign-in counted: a card is not used up, so a photographed one could otherwise sign
# in any number of phones (each a new row, each sending scans). A volunteer needs a few a year.
@limiter.limit("10 per hour", key_func=_card_key, scope="card-signins")
def card_confirm(code: str):
    try:
        result = sign_in_with_card(db.session, code_signer(), code, user_agent=request.headers.get("User-Agent"))
    except DomainError as exc:
        return _refused(exc, 404 if exc.code == "bad_token" else 410)
    return _signed_in(result, safe_next(request.form.get("next"), url_for("signin.me")))


def sms_offered() -> bool:
    """SMS sign-in is offered only where it can work: self-service sign-in on, a provider in the
    environment and the 登录验证码 template filled in. Otherwise the option is not shown at all."""
    return (get_bool(db.session, SELF_SERVICE_SIGNIN) and sms_configured(current_app.config)
            and sms_sign_in_ready(db.session))


def _signin_page(next_url: str, phone: str = ""):
    return render_template("volunteer/signin.html", enabled=get_bool(db.session, SELF_SERVICE_SIGNIN),
                           sms=sms_offered(), next=next_url, phone=phone)


@bp.route("/signin", methods=["GET", "POST"])
@limiter.limit("5 per minute;30 per hour", methods=["POST"], deduct_when=_failed)
def self_service():
    """Phone + PIN. The limiter is a first brake per worker; the limits that hold are counted in the
    database by the service (per phone number and per address)."""
    next_url = safe_next(request.values.get("next"), url_for("signin.me"))
    if request.method == "POST":
        try:
            result = self_service_sign_in(db.session, request.form.get("phone", ""), request.form.get("pin", ""),
                                          address=request.remote_addr, user_agent=request.headers.get("User-Agent"))
        except DomainError as exc:
            flash(exc.message, "error")
            return _signin_page(next_url, request.form.get("phone", "")[:32]), \
                429 if exc.code in ("signin_locked", "signin_throttled") else 400
        return _signed_in(result, next_url)
    return _signin_page(next_url)


# --- phone number + a one-time code by SMS -----------------------------------------------------------
# Step 1 (/signin/sms): the number. Step 2 (/signin/sms/code): "验证码已发送", the code. The number
# travels between the two in the (signed) session cookie, never in a URL.
SMS_PHONE = "sms_signin_phone"


def _next_arg(next_url: str) -> str | None:
    return None if next_url == url_for("signin.me") else next_url


def _sms_page(step: str, next_url: str, status: int = 200, **extra):
    return render_template("volunteer/signin_sms.html", step=step, next=next_url, **extra), status


@bp.route("/signin/sms", methods=["GET", "POST"])
@limiter.limit("5 per minute;30 per hour", methods=["POST"])
def sms_start():
    """Send a code. Every request counts against the address (each may cost an SMS), and the answer
    is the same for any number: the service says nothing about whether a text went out."""
    enabled = get_bool(db.session, SELF_SERVICE_SIGNIN)
    next_url = safe_next(request.values.get("next"), url_for("signin.me"))
    if not sms_offered():
        flash(_("短信验证码登录暂未开通，请用其他方式登录") if enabled else _("自助登录已关闭，请向平安办索取登录链接"),
              "error")
        return redirect(url_for("signin.self_service", next=_next_arg(next_url)))
    if request.method == "GET":
        return _sms_page("phone", next_url, phone="")
    raw = request.form.get("phone", "")[:32]
    try:
        phone = normalise_phone(raw)  # a typo is said as such: the format reveals nothing about the roster
        send_sign_in_code(db.session, phone, address=request.remote_addr, clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return _sms_page("phone", next_url, 429 if exc.code in ("signin_locked", "signin_throttled") else 400,
                         phone=raw)
    session[SMS_PHONE] = phone
    if request.form.get("resend"):
        flash(_("已重新发送验证码，请用最新收到的那条短信里的验证码"), "success")
    return redirect(url_for("signin.sms_code", next=_next_arg(next_url)))


@bp.route("/signin/sms/code", methods=["GET", "POST"])
@limiter.limit("5 per minute;30 per hour", methods=["POST"], deduct_when=_failed)
def sms_code():
    """The code from the text: the PIN's limits and lock-out (counted in the database), then the same
    device cookie as every other sign-in."""
    next_url = safe_next(request.values.get("next"), url_for("signin.me"))
    phone = session.get(SMS_PHONE)
    if not phone or not sms_offered():
        return redirect(url_for("signin.sms_start", next=_next_arg(next_url)))
    if request.method == "POST":
        try:
            result = self_service_sign_in(db.session, phone, request.form.get("code", ""), credential=SMS_CODE,
                                          address=request.remote_addr,
                                          user_agent=request.headers.get("User-Agent"), clock=clock())
        except DomainError as exc:
            flash(exc.message, "error")
            return _sms_page("code", next_url, 429 if exc.code in ("signin_locked", "signin_throttled") else 400,
                             phone=phone)
        session.pop(SMS_PHONE, None)
        return _signed_in(result, next_url)
    return _sms_page("code", next_url, phone=phone)


@bp.get("/me")
def me():
    vol = current_volunteer()
    if vol is None:
        return _signin_page(url_for("signin.me"))
    rules = scan_rules()
    summary = current_hours(db.session, vol.id, now(), rules.zone)
    return render_template("volunteer/me.html", vol=vol, year=summary.year, summary=summary,
                           current=open_attendance(db.session, vol.id),
                           upcoming=upcoming_shifts(db.session, vol.id, clock=clock()),
                           shifts=my_shifts(db.session, vol.id, clock=clock()), office_phone=office_phone(db.session),
                           recent=recent_attendances(db.session, vol.id),
                           unread=unread_count(db.session, vol.id), survey=_open_survey(vol.id),
                           telegram=chat_link_of(db.session, volunteer_id=vol.id), bot=bool(bot_username()))


def _open_survey(volunteer_id: int):
    """The open round and this volunteer's answer, for the "my" page and the inbox alike."""
    return survey_for(db.session, volunteer_id, clock=clock())


@bp.post("/me/signout")
def signout():
    device_id = current_device_id()
    vol = current_volunteer()
    if device_id is not None and vol is not None:
        revoke_device(db.session, device_id, by=f"volunteer:{vol.id}", volunteer_id=vol.id, cancel_links=False)
    flash(_("这部手机已退出登录"), "success")
    return redirect(url_for("signin.me"))


def _require_volunteer():
    vol = current_volunteer()
    if vol is None:
        return None, redirect(url_for("signin.me"))
    return vol, None


_SHIFT_ACTIONS = {"confirm": confirm_shift, "leave": request_leave, "undo-leave": undo_leave}


def _volunteer_key() -> str:
    """Shift taps are limited per volunteer (not per address: a team shares one Wi-Fi)."""
    vol = current_volunteer()
    return f"volunteer:{vol.id}" if vol is not None else f"address:{request.remote_addr}"


@bp.post("/me/shifts/<int:shift_id>/<action>")
@limiter.limit("10 per minute;60 per hour", key_func=_volunteer_key, scope="shift-actions")
def my_shift_action(shift_id: int, action: str):
    """确认 / 请假 / 撤销请假 on the /me page: the same service as the bot's buttons (plain forms, CSRF)."""
    vol, redirect_resp = _require_volunteer()
    if vol is None:
        return redirect_resp
    fn = _SHIFT_ACTIONS.get(action)
    if fn is None:
        return render_template("volunteer/refused.html", error=DomainError("not_found", _("未知的操作"))), 404
    try:
        result = fn(db.session, shift_id, vol.id, clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("signin.me") + "#shifts")
    status = result.shift.status
    if not result.changed:
        flash(_("已经是这样了，无需重复操作"), "success")
    elif status == "declined":
        flash(_("已请假，平安办和队长会收到通知"), "success")
    elif action == "undo-leave":
        flash(_("已撤销请假，平安办会收到通知"), "success")
    else:
        flash(_("已确认参加"), "success")
    return redirect(url_for("signin.me") + "#shifts")


@bp.get("/me/inbox")
def my_inbox():
    """Show the messages; a GET changes nothing (issue 10, item 16).

    Coordinators see "read on the web" beside the Telegram status, so reading is recorded by a
    POST with the page's CSRF token (the 标为已读 button, or static/js/app.js once the page has
    been visible for a moment): a cross-site link, a prefetch or a link preview cannot fake it.
    """
    vol, redirect_resp = _require_volunteer()
    if vol is None:
        return redirect_resp
    items = inbox(db.session, vol.id)
    unread = [i.message_id for i in items if i.read_at is None]
    return render_template("volunteer/inbox.html", items=items, unread=set(unread), unread_ids=unread, vol=vol,
                           survey=_open_survey(vol.id))


@bp.post("/me/inbox/read")
def my_inbox_read():
    """Mark the messages that were on the page as read (only those: a newer one stays new)."""
    vol, redirect_resp = _require_volunteer()
    if vol is None:
        return redirect_resp
    ids = parse_ids(request.form.getlist("message_id"))[:200]
    if ids:
        mark_read(db.session, vol.id, ids, clock=clock())
    if request.headers.get("X-Requested-With") == "fetch":
        return "", 204
    return redirect(url_for("signin.my_inbox"))


@bp.route("/me/survey/<int:round_id>", methods=["GET", "POST"])
@limiter.limit("10 per minute;60 per hour", methods=["POST"], key_func=_volunteer_key, scope="survey-answers")
def my_survey(round_id: int):
    vol, redirect_resp = _require_volunteer()
    if vol is None:
        return redirect_resp
    if request.method == "POST":
        try:
            score = int(request.form.get("score", "0"))
            label = answer(db.session, round_id, vol.id, score, channel="web", clock=clock())
            comment = request.form.get("comment", "")
            if comment.strip():
                add_comment(db.session, round_id, vol.id, comment, channel="web", clock=clock())
            flash(_("已记录您的评价：%(l)s。谢谢！", l=label), "success")
            return redirect(url_for("signin.me"))
        except (DomainError, ValueError) as exc:
            flash(exc.message if isinstance(exc, DomainError) else _("请选择满意程度"), "error")
    rounds = {r.id: r for r in list_rounds(db.session)}
    if round_id not in rounds:
        return render_template("volunteer/refused.html", error=DomainError("no_survey", _("调查轮次不存在"))), 404
    mine = my_answer(db.session, round_id, vol.id)
    return render_template("volunteer/survey.html", round=rounds[round_id], mine=mine, scale=SCALE,
                           my_comments=comments(db.session, round_id, vol.id))


@bp.post("/me/telegram")
@limiter.limit("10 per hour", key_func=_volunteer_key, scope="telegram-links")   # each tap stores a link token
def my_telegram():
    vol, redirect_resp = _require_volunteer()
    if vol is None:
        return redirect_resp
    try:
        may_link_chat(vol.method)
        url = issue_chat_link(db.session, bot_username=bot_username(), volunteer_id=vol.id, clock=clock(),
                              device_id=vol.device_id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("signin.me"))
    return render_template("volunteer/telegram.html", url=url, qr=qr_data_uri(url))


@bp.post("/me/telegram/unlink")
def my_telegram_unlink():
    vol, redirect_resp = _require_volunteer()
    if vol is None:
        return redirect_resp
    unlink_chat(db.session, volunteer_id=vol.id)
    flash(_("已解除 Telegram 绑定"), "success")
    return redirect(url_for("signin.me"))
