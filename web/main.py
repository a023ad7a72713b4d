"""The public landing page."""
from __future__ import annotations

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for

from extensions import db
from services.catalog import list_events, list_points
from web.auth import safe_next

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    return render_template("main/index.html", points=list_points(db.session), events=list_events(db.session))


@bp.get("/lang/<code>")
def set_language(code: str):
    """Remember the chosen interface language in a cookie."""
    target = safe_next(request.args.get("next"), url_for("main.index"))
    resp = make_response(redirect(target))
    if code in ("zh", "en"):
        resp.set_cookie("lang", code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return resp
