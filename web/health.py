"""`GET /healthz`: for load balancers and the benchmark's baseline."""
from __future__ import annotations

from flask import Blueprint, jsonify

from extensions import db
from services.health import database_ok

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    ok, reason = database_ok(db.session)
    if ok:
        return jsonify(status="ok")
    return jsonify(status="error", reason=f"database unavailable: {reason}"), 503
