"""Who is asking: a coordinator (password, Flask session) or a volunteer's phone (device cookie)."""
from __future__ import annotations

import re
import secrets
from datetime import timedelta
from functools import wraps
from typing import Callable
from urllib.parse import unquote, urlsplit

from flask import current_app, g, redirect, request, session, url_for
from werkzeug.exceptions import Forbidden

from extensions import db
from models.user import User
from services.signin import SignedInVolunteer, device_volunteer
from web.runtime import clock
from services.users import session_user

DEVICE_COOKIE = "pv_device"
DEVICE_COOKIE_AGE = 10 * 365 * 24 * 3600  # "until revoked": the server decides, not the date


SESSION_KEY = "sid"  # the Flask session holds only this random secret; `coord_sessions` holds its hash


def current_user() -> User | None:
    """The coordinator of this request, checked against the server-side session on every request."""
    if "coord_user" not in g:
        lifetime = current_app.permanent_session_lifetime
        g.coord_user = session_user(db.session, session.get(SESSION_KEY),
                                    max_age=lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=lifetime))
    return g.coord_user


_VOLUNTEER = "pingan.volunteer"


def current_volunteer() -> SignedInVolunteer | None:
    """The device cookie's volunteer, looked up once per request. Kept on the request, not on `g`:
    the rate limiter asks before `g`'s identity cache is reset for a reused app context, and the
    scan's limit and the scan itself must share one lookup (it is a fifth of a scan's cost)."""
    if _VOLUNTEER not in request.environ:
        request.environ[_VOLUNTEER] = device_volunteer(db.session, request.cookies.get(DEVICE_COOKIE), clock=clock())
    return request.environ[_VOLUNTEER]


def current_device_id() -> int | None:
    vol = current_volunteer()
    return vol.device_id if vol is not None else None


BROWSER_COOKIE = "pv_browser"
BROWSER_COOKIE_AGE = 10 * 365 * 24 * 3600
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")
# Pages a volunteer's phone opens: their responses give the browser its id when it has none.
VOLUNTEER_BLUEPRINTS = frozenset({"scan", "signin", "api_v1"})


def current_browser_id() -> str:
    """This browser's long-lived random id (`pv_browser`): unlike the device cookie it survives
    signing out and in as someone else, so one phone scanning for two volunteers shows. A browser
    without one gets one now, sent with this response (`remember_browser`)."""
    value = request.cookies.get(BROWSER_COOKIE, "")
    if _BROWSER_ID.fullmatch(value):
        return value
    # Kept on the request, not on `g`: an app context reused across requests must not hand one
    # browser's new id to the next.
    return request.environ.setdefault("pv.new_browser_id", secrets.token_urlsafe(24))


def remember_browser(response):
    """After any volunteer page (or API) response: give the browser its id if it has none."""
    if request.blueprint in VOLUNTEER_BLUEPRINTS \
            and not _BROWSER_ID.fullmatch(request.cookies.get(BROWSER_COOKIE, "")):
        response.set_cookie(BROWSER_COOKIE, current_browser_id(), max_age=BROWSER_COOKIE_AGE, httponly=True,
                            samesite="Lax", secure=current_app.config["PUBLIC_BASE_URL"].startswith("https://"))
    return response


def set_device_cookie(response, secret: str):
    response.set_cookie(DEVICE_COOKIE, secret, max_age=DEVICE_COOKIE_AGE, httponly=True, samesite="Lax",
                        secure=current_app.config["PUBLIC_BASE_URL"].startswith("https://"))
    return response


_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target: str | None, default: str) -> str:
    """The one check for every `next` (and the remembered scan page): only a path on this site.

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so `/\t/evil`,
    `/\\evil` and `//evil` all leave the site; encoded forms (`%2F%2F`, `%5C`, `%09`) are decoded
    once per layer and checked again. Anything doubtful gets the default.
    """
    if not isinstance(target, str) or not target or len(target) > 2000:
        return default
    layer = target
    for _layer in range(4):
        if _UNSAFE_CHARS.search(layer) or not layer.startswith("/") or layer.startswith("//"):
            return default
        parts = urlsplit(layer)
        if parts.scheme or parts.netloc:
            return default
        decoded = unquote(layer)
        if decoded == layer:
            return target
        layer = decoded
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
