"""Coordinator sign-in, sign-out and the dashboard."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from extensions import db, limiter
from models import Event, PatrolPoint, Shift, Volunteer
from models.types import utcnow
from services.i18n import _
from services.users import verify_password
from web.auth import coordinator_required, current_user, safe_next

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
        session.clear()
        session.permanent = True
        session["user_id"] = user.id
        session["pw"] = user.password_hash[-16:]  # a password change signs other browsers out
        user.last_login_at = utcnow()
        db.session.commit()
        return redirect(next_url)
    return render_template("coord/login.html", next=next_url, username="")


@bp.post("/logout")
def logout():
    session.clear()
    flash(_("已退出登录"), "success")
    return redirect(url_for("coord_auth.login"))


@bp.get("/")
@coordinator_required
def dashboard():
    from web.runtime import now as app_now

    now = app_now()
    counts = {
        "volunteers": db.session.scalar(select(func.count(Volunteer.id)).where(Volunteer.status == "active")),
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
