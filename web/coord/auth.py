"""Coordinator sign-in, sign-out and the dashboard."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select

from extensions import db, limiter
from models import Event, PatrolPoint, Shift, Volunteer
from services.i18n import _
from services.users import end_session, start_session, verify_password
from web.auth import SESSION_KEY, coordinator_required, current_user, safe_next

bp = Blueprint("coord_auth", __name__, url_prefix="/coord")


def _account_name() -> str:
    return request.form.get("username", "").strip().lower()[:80]


def _account_key() -> str:
    return "account:" + _account_name()


def _wrong_password(response) -> bool:
    return response.status_code == 401


KNOWN_BROWSER_COOKIE = "pv_known"


def _known_browsers() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="coord-known-browser")


def _known_browser() -> bool:
    """A browser this account has signed in from before is not held by the per-account limit:
    whoever floods an account name with wrong passwords must not lock its owner out on a patrol
    night (the per-address limit still applies to every browser)."""
    try:
        return _known_browsers().loads(request.cookies.get(KNOWN_BROWSER_COOKIE, "")) == _account_name()
    except BadSignature:
        return False


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per hour", methods=["POST"])
# Per account name too, failures only: guesses spread over many addresses (the address limit alone
# let them go on) stop after 20 an hour, except from a browser the account has signed in from.
@limiter.limit("20 per hour", methods=["POST"], key_func=_account_key, scope="coord-login-account",
               deduct_when=_wrong_password, exempt_when=_known_browser)
def login():
    next_url = safe_next(request.values.get("next"), url_for("coord_auth.dashboard"))
    if request.method == "POST":
        user = verify_password(db.session, request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            flash(_("用户名或密码不正确"), "error")
            return render_template("coord/login.html", next=next_url,
                                   username=request.form.get("username", "")), 401
        secret = start_session(db.session, user.id, user_agent=request.headers.get("User-Agent"))
        session.clear()  # a fresh cookie: nothing from before the sign-in carries over
        session.permanent = True
        session[SESSION_KEY] = secret
        response = redirect(next_url)
        response.set_cookie(KNOWN_BROWSER_COOKIE, _known_browsers().dumps(_account_name()), max_age=365 * 24 * 3600,
                            httponly=True, samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"],
                            path=url_for("coord_auth.login"))
        return response
    return render_template("coord/login.html", next=next_url, username="")


@bp.post("/logout")
def logout():
    """End the session on the server too: a copy of the cookie is refused from now on."""
    user = current_user()
    end_session(db.session, session.get(SESSION_KEY), by=f"logout:{user.id}" if user else "logout")
    session.clear()
    flash(_("已退出登录"), "success")
    return redirect(url_for("coord_auth.login"))


@bp.get("/")
@coordinator_required
def dashboard():
    from services.clock import local_date
    from services.volunteers import on_roster
    from web.runtime import now as app_now

    now = app_now()
    counts = {
        # On the roster today: a withdrawal dated ahead still counts until its day.
        "volunteers": db.session.scalar(select(func.count(Volunteer.id)).where(on_roster(local_date(now)))),
        "points": db.session.scalar(select(func.count(PatrolPoint.id)).where(PatrolPoint.active.is_(True))),
        "events": db.session.scalar(select(func.count(Event.id))),
        "upcoming_shifts": db.session.scalar(select(func.count(Shift.id)).where(Shift.ends_at > now)),
    }
    from flask import current_app

    from services.board import today
    from web.runtime import clock, scan_rules

    day = today(db.session, clock=clock(), grace_minutes=current_app.config.get("BOARD_MISSING_GRACE_MINUTES", 15),
                zone=scan_rules().zone)
    return render_template("coord/dashboard.html", counts=counts, user=current_user(), day=day)
