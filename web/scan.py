"""The URL printed on a patrol-point poster: the light page with the one big button.

GET never changes anything (chat apps and link previewers prefetch URLs); only the button's POST
scans. Works without JavaScript; with it, the page adds the phone's location when the point has a
geofence.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, current_app, g, render_template, request, send_from_directory, session

from extensions import db
from keys import code_signer
from services.assignments import office_phone
from services.checkin import current_shift_at, last_check_out, next_shift_at, open_attendance, scan
from services.i18n import _
from services.settings import SELF_SERVICE_SIGNIN, get_bool
from services.errors import DomainError
from services.hours import current_hours, year_target_hours
from services.programme_year import current_year
from services.qr import resolve_point_token
from web import domain_status
from web.auth import current_browser_id, current_device_id, current_volunteer, remember_browser
from web.ratelimits import scan_limit
from web.runtime import clock, now, scan_rules

# A patrol that ended this recently is named on the point's page above the 签到 button.
LAST_CHECK_OUT_SHOWN = timedelta(hours=2)

bp = Blueprint("scan", __name__)
bp.after_app_request(remember_browser)  # every volunteer page (see VOLUNTEER_BLUEPRINTS), registered once



def _float(name: str) -> float | None:
    """An empty field is "no location"; anything else must be a number (range: the service)."""
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    return value  # NaN and ±inf are refused by check_location with a 422


@bp.get("/sw.js")
def service_worker():
    """Served from the root so its scope covers /p/ (the poster pages); never cached long, so a
    new version reaches phones on their next visit."""
    resp = send_from_directory(current_app.static_folder, "js/sw.js", mimetype="text/javascript", max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/scan-offline")
def offline_shell():
    """The page the service worker shows for a poster scanned with no signal: it saves the scan
    on the phone (no name, no token in it: it is cached once for every poster)."""
    return render_template("volunteer/scan_offline.html")


def next_shift_text(point_id: int) -> str | None:
    """"下一班 18:30 开始，18:00 起可签到": the next step for a volunteer with no shift open here."""
    rules = scan_rules()
    nxt = next_shift_at(db.session, point_id, rules=rules, clock=clock())
    if nxt is None:
        return None
    today = now().astimezone(rules.zone).date()
    fmt = "%H:%M" if nxt.starts_at.astimezone(rules.zone).date() == today else "%m-%d %H:%M"
    return _("下一班 %(s)s 开始，%(o)s 起可签到", s=nxt.starts_at.astimezone(rules.zone).strftime(fmt),
             o=nxt.opens_at.astimezone(rules.zone).strftime(fmt))


def in_wechat() -> bool:
    return "micromessenger" in (request.headers.get("User-Agent") or "").lower()


def signin_page(point, status: int = 200):
    """Not signed in in this browser: the ways that work on the spot first (the card's QR, phone +
    PIN), each coming straight back to this poster."""
    from web.signin import sms_offered

    session["after_signin"] = request.path  # any sign-in route brings the volunteer back here
    return render_template("volunteer/scan_signin.html", point=point, wechat=in_wechat(),
                           pin_enabled=get_bool(db.session, SELF_SERVICE_SIGNIN), sms=sms_offered()), status


@bp.get("/p/<token>")
def point(token: str):
    """Show the point, the volunteer's shift and state, and the 签到 / 签退 button."""
    try:
        point = resolve_point_token(db.session, code_signer(), token)
    except DomainError as exc:
        return render_template("volunteer/refused.html", error=exc, office_phone=office_phone(db.session)), \
            domain_status(exc)
    vol = current_volunteer()
    if vol is None:
        return signin_page(point)
    rules = scan_rules()
    current = open_attendance(db.session, vol.id)
    shift = current_shift_at(db.session, point.id, vol.id, rules=rules, clock=clock())
    at = now()
    summary = current_hours(db.session, vol.id, at, rules.zone)
    last = None if current else last_check_out(db.session, vol.id, since=at - LAST_CHECK_OUT_SHOWN)
    # How long a 签退 would still be a duplicate (0: not just checked in).
    arm_ms = max(0, int((rules.debounce - (at - current.check_in_at)).total_seconds() * 1000)) if current else 0
    return render_template("volunteer/scan.html", point=point, vol=vol, current=current, shift=shift,
                           summary=summary, nonce=uuid.uuid4().hex, last=last, arm_ms=arm_ms,
                           debounce_seconds=int(rules.debounce.total_seconds()),
                           geofence=point.has_geofence and rules.geofence_mode != "off",
                           next_shift=None if current or shift else next_shift_text(point.id))


@bp.post("/p/<token>")
@scan_limit
def point_scan(token: str):
    vol = current_volunteer()
    try:
        result = scan(db.session, vol.id if vol else None, token, signer=code_signer(), rules=scan_rules(),
                      clock=clock(), nonce=request.form.get("nonce"), lat=_float("lat"), lon=_float("lon"),
                      accuracy=_float("accuracy"), device_id=current_device_id(), channel="web",
                      browser_id=current_browser_id(),
                      ask_before_ending=request.form.get("confirm") != "1")
    except DomainError as exc:
        g.scan_outcome = ("refused", exc.code)
        if exc.code == "not_signed_in":
            try:
                return signin_page(resolve_point_token(db.session, code_signer(), token), 401)
            except DomainError:
                pass
        next_shift = None
        if exc.code == "no_active_shift":
            try:
                next_shift = next_shift_text(resolve_point_token(db.session, code_signer(), token).id)
            except DomainError:
                pass
        return render_template("volunteer/refused.html", error=exc, retry=request.path, next_shift=next_shift,
                               office_phone=office_phone(db.session)), domain_status(exc)
    g.scan_outcome = (result.action, "ok")
    if result.action == "confirm_checkout":
        # nothing changed yet: the same form, confirmed, ends the patrol; cancelling goes back
        return render_template("volunteer/scan_confirm.html", result=result, vol=vol,
                               form={k: request.form.get(k, "") for k in ("nonce", "lat", "lon", "accuracy")})
    target = year_target_hours(db.session, current_year(db.session, result.scanned_at, scan_rules().zone))
    return render_template("volunteer/scan_result.html", result=result, vol=vol, target=target)
