"""Volunteer sign-in on a phone: one-time links, the card's QR, phone + vest number; "my page"."""
from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, session, url_for

from extensions import code_signer, db, limiter
from services.errors import DomainError
from services.i18n import _
from services.settings import SELF_SERVICE_SIGNIN, get_bool
from services.signin import (confirm_login_link, peek_login_link, resolve_card, revoke_device,
                             self_service_sign_in, sign_in_with_card)
from services.checkin import open_attendance, upcoming_shifts
from services.hours import recent_attendances, volunteer_hours
from web.auth import current_device_id, current_volunteer, safe_next, set_device_cookie
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
@limiter.limit("20 per minute")
def link_confirm(token: str):
    try:
        result = confirm_login_link(db.session, token, user_agent=request.headers.get("User-Agent"))
    except DomainError as exc:
        return _refused(exc, 410 if exc.code in ("link_used", "link_expired") else 400)
    return _signed_in(result, safe_next(request.form.get("next"), url_for("signin.me")))


@bp.get("/card/<code>")
def card(code: str):
    try:
        vol = resolve_card(db.session, code_signer(), code)
    except DomainError as exc:
        return _refused(exc, 404 if exc.code == "bad_token" else 410)
    return render_template("volunteer/confirm.html", name=vol.name, next=safe_next(request.args.get("next"), ""),
                           kind="card")


@bp.post("/card/<code>")
@limiter.limit("20 per minute")
def card_confirm(code: str):
    try:
        result = sign_in_with_card(db.session, code_signer(), code, user_agent=request.headers.get("User-Agent"))
    except DomainError as exc:
        return _refused(exc, 404 if exc.code == "bad_token" else 410)
    return _signed_in(result, safe_next(request.form.get("next"), url_for("signin.me")))


@bp.route("/signin", methods=["GET", "POST"])
@limiter.limit("5 per minute;30 per hour", methods=["POST"])
def self_service():
    enabled = get_bool(db.session, SELF_SERVICE_SIGNIN)
    next_url = safe_next(request.values.get("next"), url_for("signin.me"))
    if request.method == "POST":
        try:
            result = self_service_sign_in(db.session, request.form.get("phone", ""), request.form.get("vest_no", ""),
                                          user_agent=request.headers.get("User-Agent"))
        except DomainError as exc:
            flash(exc.message, "error")
            return render_template("volunteer/signin.html", enabled=enabled, next=next_url,
                                   phone=request.form.get("phone", "")), 400
        return _signed_in(result, next_url)
    return render_template("volunteer/signin.html", enabled=enabled, next=next_url, phone="")


@bp.get("/me")
def me():
    vol = current_volunteer()
    if vol is None:
        return render_template("volunteer/signin.html", enabled=get_bool(db.session, SELF_SERVICE_SIGNIN),
                               next=url_for("signin.me"), phone="")
    rules = scan_rules()
    year = now().astimezone(rules.zone).year
    return render_template("volunteer/me.html", vol=vol, year=year,
                           summary=volunteer_hours(db.session, vol.id, year),
                           current=open_attendance(db.session, vol.id),
                           upcoming=upcoming_shifts(db.session, vol.id, clock=clock()),
                           recent=recent_attendances(db.session, vol.id))


@bp.post("/me/signout")
def signout():
    device_id = current_device_id()
    vol = current_volunteer()
    if device_id is not None and vol is not None:
        revoke_device(db.session, device_id, by=f"volunteer:{vol.id}", volunteer_id=vol.id)
    flash(_("这部手机已退出登录"), "success")
    return redirect(url_for("signin.me"))
