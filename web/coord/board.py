"""The live "on patrol now" board, usable on a phone on a key-date night, with check-in and
check-out on a volunteer's behalf (coordinators and designated team leaders)."""
from __future__ import annotations

import hashlib

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from extensions import db
from models.point import PatrolPoint
from services.audit_log import record_action
from services.assignments import leave_list
from services.checkin import proxy_check_in, proxy_check_out
from services.errors import DomainError
from services.i18n import _
from services.review import find_volunteer, on_patrol, on_patrol_by_point
from web.auth import actor, current_user
from web.coord import protect
from web.runtime import clock, scan_rules

bp = protect(Blueprint("coord_board", __name__, url_prefix="/coord/board"), leaders=True)


def _points():
    return db.session.scalars(select(PatrolPoint).where(PatrolPoint.active.is_(True)).order_by(PatrolPoint.code)).all()


BOARD_LIMIT = 100  # rows on the board without a point chosen; the summary counts everyone


def _board() -> dict:
    point_id = request.args.get("point", type=int)
    summary = on_patrol_by_point(db.session)
    total = sum(p.count for p in summary)
    shown = on_patrol(db.session, point_id=point_id, limit=None if point_id else BOARD_LIMIT)
    return {"rows": shown, "summary": summary, "total": total, "point_id": point_id}


@bp.get("/")
def index():
    return render_template("coord/board.html", points=_points(), leave=leave_list(db.session, clock=clock()), **_board())


@bp.get("/rows")
def rows():
    """The table body alone, polled by the page every 10 s. Answered 304 when it has not changed
    (ETag), so an unchanged board costs a phone a few hundred bytes."""
    board = _board()
    response = make_response(render_template("coord/board_rows.html", **board))
    response.headers["X-Board-Total"] = str(board["total"])
    response.headers["Cache-Control"] = "private, no-cache"
    # From the data, not the HTML: the forms' CSRF tokens carry a time stamp and change every time.
    state = repr((board["total"], [(r.id, r.flags, r.source) for r in board["rows"]],
                  [(p.point_id, p.count) for p in board["summary"]], request.cookies.get("lang")))
    response.set_etag(hashlib.sha256(state.encode()).hexdigest()[:32])
    return response.make_conditional(request)


@bp.post("/check-in")
def check_in():
    try:
        vol = find_volunteer(db.session, request.form.get("volunteer", ""))
        point_id = int(request.form.get("point_id", "0") or 0)
        att = proxy_check_in(db.session, vol.id, point_id, by_user_id=current_user().id, rules=scan_rules(),
                             clock=clock())
        record_action(db.session, actor(), "proxy", f"volunteer:{vol.id}", f"check_in; point={point_id}")
        db.session.commit()
        flash(_("已为 %(n)s 代签到（%(p)s）", n=vol.name, p=att.point_name), "success")
    except (DomainError, ValueError) as exc:
        db.session.rollback()
        flash(exc.message if isinstance(exc, DomainError) else _("请选择点位"), "error")
    return redirect(url_for(".index"))


@bp.post("/<int:attendance_id>/check-out")
def check_out(attendance_id: int):
    try:
        att = proxy_check_out(db.session, attendance_id, by_user_id=current_user().id, rules=scan_rules(),
                              clock=clock())
        record_action(db.session, actor(), "proxy", f"attendance:{attendance_id}", "check_out")
        db.session.commit()
        flash(_("已代签退，本次计 %(h).1f 小时", h=att.credited_hours), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".index"))
