"""The URL printed on a patrol-point poster."""
from __future__ import annotations

from flask import Blueprint, render_template

from extensions import code_signer, db
from services.errors import DomainError
from services.qr import resolve_point_token
from web.auth import current_volunteer

bp = Blueprint("scan", __name__)


@bp.get("/p/<token>")
def point(token: str):
    """Identify the point from its signed token; a bad or revoked code gets a clear page, never a 5xx."""
    try:
        point = resolve_point_token(db.session, code_signer(), token)
    except DomainError as exc:
        status = 410 if exc.code in ("point_revoked", "point_inactive") else 404
        return render_template("volunteer/refused.html", error=exc), status
    return render_template("volunteer/scan_soon.html", point=point, vol=current_volunteer())
