"""Admin page: the coordinators' action log and the personal-data export log (read-only)."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from extensions import db
from models.audit import PersonalDataExport
from services.audit_log import ACTIONS, list_actions
from web.coord import protect
from web.params import db_int

bp = protect(Blueprint("coord_audit", __name__, url_prefix="/coord/admin/audit"), admin=True)


@bp.get("/")
def index():
    args = {"action": request.args.get("action", ""), "target": request.args.get("target", "").strip(),
            "actor": request.args.get("actor", "").strip()}
    page = list_actions(db.session, page=request.args.get("page", 1, type=db_int), **args)
    exports = db.session.scalars(select(PersonalDataExport).order_by(PersonalDataExport.at.desc()).limit(50)).all()
    return render_template("coord/audit.html", page=page, actions=ACTIONS, args=args, exports=exports)
