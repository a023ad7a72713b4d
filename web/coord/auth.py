"""Coordinator sign-in, sign-out and the dashboard."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from extensions import db, limiter
from models import Event, PatrolPoint, Shift, Volunteer
from models.types import utcnow
from services.i18n import _
from services.users import end_session, start_session, verify_password
from web.auth import SESSION_KEY, coordinator_required, current_user, safe_next

bp = Blueprint("coord_auth", __name__, url_prefix="/coord")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per hour", methods=["POST"])
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
        return redirect(next_url)
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
    now = utcnow()
    counts = {
        "volunteers": db.session.scalar(select(func.count(Volunteer.id)).where(Volunteer.status == "active")),
        "points": db.session.scalar(select(func.count(PatrolPoint.id)).where(PatrolPoint.active.is_(True))),
        "events": db.session.scalar(select(func.count(Event.id))),
        "upcoming_shifts": db.session.scalar(select(func.count(Shift.id)).where(Shift.ends_at > now)),
    }
    return render_template("coord/dashboard.html", counts=counts, user=current_user())
