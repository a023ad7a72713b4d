"""Admin pages: coordinator accounts and run-time settings."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from extensions import db
from models.user import ROLES, User
from services.errors import DomainError
from services.i18n import _
from services.settings import OFFICE_PHONE, SELF_SERVICE_SIGNIN, current_settings, set_setting
from services.users import (create_user, end_all_sessions, open_session_counts, set_active, set_password, set_role,
                            set_team)
from web.auth import actor, current_user
from web.coord import protect

bp = protect(Blueprint("coord_admin", __name__, url_prefix="/coord/admin"), admin=True)


def _page(status: int = 200, form=None):
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("coord/admin.html", users=users, roles=ROLES, settings=current_settings(db.session),
                           sessions=open_session_counts(db.session), form=form or {}), status


@bp.get("/")
def index():
    return _page()


@bp.post("/accounts")
def create():
    try:
        info = create_user(db.session, request.form.get("username", ""), request.form.get("password", ""),
                           request.form.get("role", "coordinator"), request.form.get("display_name") or None)
    except DomainError as exc:
        flash(exc.message, "error")
        return _page(400, form=request.form)
    flash(_("已创建账号 %(u)s", u=info.username), "success")
    return redirect(url_for(".index"))


@bp.post("/accounts/<int:user_id>")
def update(user_id: int):
    me = current_user()
    try:
        if "role" in request.form:
            set_role(db.session, user_id, request.form["role"], acting_user_id=me.id)
        if "team" in request.form:
            set_team(db.session, user_id, request.form["team"])
        if "active" in request.form:
            set_active(db.session, user_id, request.form["active"] == "1", acting_user_id=me.id)
        if request.form.get("password"):
            user = db.session.get(User, user_id)
            set_password(db.session, user.username if user else "", request.form["password"])
        flash(_("已保存"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _page(400)
    return redirect(url_for(".index"))


@bp.post("/accounts/<int:user_id>/sessions/end")
def end_sessions(user_id: int):
    """Sign an account out of every browser (a lost laptop, a colleague who left)."""
    try:
        count = end_all_sessions(db.session, user_id, by=actor())
    except DomainError as exc:
        flash(exc.message, "error")
        return _page(400)
    flash(_("已结束该账号的 %(n)d 个登录会话", n=count), "success")
    return redirect(url_for(".index"))


@bp.post("/settings")
def settings():
    phone = (request.form.get(OFFICE_PHONE) or "").strip()
    if len(phone) > 32 or any(ch not in "0123456789-+ ()" for ch in phone):
        flash(_("平安办电话只能包含数字、空格和 - + ( )，最多 32 位"), "error")
        return _page(400)
    set_setting(db.session, SELF_SERVICE_SIGNIN, "1" if request.form.get(SELF_SERVICE_SIGNIN) == "1" else "0",
                by=actor())
    set_setting(db.session, OFFICE_PHONE, phone, by=actor())
    flash(_("设置已保存"), "success")
    return redirect(url_for(".index"))
