"""Who is asking: a coordinator (password, Flask session) or a volunteer's phone (device cookie)."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import current_app, g, redirect, request, session, url_for
from werkzeug.exceptions import Forbidden

from extensions import db
from models.user import User
from services.signin import SignedInVolunteer, device_volunteer
from web.runtime import clock

DEVICE_COOKIE = "pv_device"
DEVICE_COOKIE_AGE = 10 * 365 * 24 * 3600  # "until revoked": the server decides, not the date


def current_user() -> User | None:
    if "coord_user" not in g:
        user = None
        uid = session.get("user_id")
        if uid is not None:
            user = db.session.get(User, uid)
            if user is None or not user.active or session.get("pw") != user.password_hash[-16:]:
                user = None
        g.coord_user = user
    return g.coord_user


def current_volunteer() -> SignedInVolunteer | None:
    if "volunteer" not in g:
        g.volunteer = device_volunteer(db.session, request.cookies.get(DEVICE_COOKIE), clock=clock())
    return g.volunteer


def current_device_id() -> int | None:
    vol = current_volunteer()
    return vol.device_id if vol is not None else None


def set_device_cookie(response, secret: str):
    response.set_cookie(DEVICE_COOKIE, secret, max_age=DEVICE_COOKIE_AGE, httponly=True, samesite="Lax",
                        secure=current_app.config["PUBLIC_BASE_URL"].startswith("https://"))
    return response


def safe_next(target: str | None, default: str) -> str:
    """Only local paths: a sign-in link must not become an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def coordinator_required(view: Callable) -> Callable:
    """Staff only; a team leader is sent to the board, the one page they may use."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            return redirect(url_for("coord_auth.login", next=request.full_path.rstrip("?")))
        if not user.is_staff:
            return redirect(url_for("coord_board.index"))
        return view(*args, **kwargs)
    return wrapped


def admin_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            return redirect(url_for("coord_auth.login", next=request.full_path.rstrip("?")))
        if not user.is_admin:
            raise Forbidden()
        return view(*args, **kwargs)
    return wrapped


def actor() -> str:
    """How audit columns name whoever is acting."""
    user = current_user()
    return f"user:{user.id}:{user.username}" if user else "anonymous"
