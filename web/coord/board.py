"""The night board, usable on a phone on a key-date night: tonight's shifts with who is missing,
present and done, one-tap reminders, and check-in and check-out on a volunteer's behalf
(coordinators and designated team leaders)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from sqlalchemy import select

from extensions import db
from models.point import PatrolPoint
from services.audit_log import record_action
from services.board import fingerprint, on_patrol_list, tonight
from services.board import remind as remind_missing
from services.assignments import leave_list
from services.checkin import proxy_check_in, proxy_check_out
from services.errors import DomainError
from services.i18n import _
from services.messaging import message_reach
from services.review import find_volunteer
from web.auth import actor, current_user
from web.coord import protect
from web.params import db_int
from web.runtime import clock, scan_rules

bp = protect(Blueprint("coord_board", __name__, url_prefix="/coord/board"), leaders=True)
MIN_REASON = 2


def _points():
    return db.session.scalars(select(PatrolPoint).where(PatrolPoint.active.is_(True)).order_by(PatrolPoint.code)).all()


def _live() -> dict:
    """What the live part shows: the summarised board (one point's in full with `?point=`), the
    people on patrol and the leave list."""
    point = request.args.get("point", type=db_int) or None
    board = tonight(db.session, clock=clock(), grace_minutes=current_app.config.get("BOARD_MISSING_GRACE_MINUTES", 15),
                    zone=scan_rules().zone, point_id=point)
    return {"board": board, "patrol": on_patrol_list(db.session, point_id=point),
            "leave": leave_list(db.session, clock=clock())}


def _back(anchor: str | None = None):
    """Back to the board the form was on (one point's, if filtered); at the row acted on when it
    worked (on a long board the top is a long way up; the row itself shows what was done), at
    the top when it did not (the error is there)."""
    return redirect(url_for(".index", point=request.form.get("point", type=db_int) or None, _anchor=anchor))


@bp.get("/")
def index():
    return render_template("coord/board.html", points=_points(), **_live())


@bp.get("/rows")
def rows():
    """The live part of the page alone, fetched by static/js/board.js every 10 seconds; answered
    304 when nothing it shows has changed since the ETag the script sends back."""
    live = _live()
    tag = fingerprint(live["board"], live["patrol"], live["leave"], str(get_locale()))
    if request.if_none_match.contains(tag):
        resp = make_response("", 304)
    else:
        resp = make_response(render_template("coord/board_rows.html", **live))
    resp.set_etag(tag)
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


@bp.post("/remind/<int:shift_id>/<int:volunteer_id>")
def remind(shift_id: int, volunteer_id: int):
    try:
        sent = remind_missing(db.session, shift_id, volunteer_id, by_user_id=current_user().id, clock=clock(),
                              zone=scan_rules().zone)
        if sent.created:
            record_action(db.session, actor(), "remind", f"volunteer:{volunteer_id}", f"shift={shift_id}")
            db.session.commit()
            if not message_reach(db.session, sent.message_id).web_only:
                flash(_("已发送到岗提醒"), "success")
            else:   # no Telegram, no SMS: "sent" would let the coordinator wait for someone who never hears
                flash(_("提醒只进了网页消息（此人没有可用的 Telegram 或短信），可能看不到：请直接打电话。"), "error")
        else:
            flash(_("已经提醒过了，不再重复发送"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _back()
    return _back(f"m-{shift_id}-{volunteer_id}")


@bp.post("/check-in")
def check_in():
    try:
        vol = find_volunteer(db.session, request.form.get("volunteer", ""))
        point_id = int(request.form.get("point_id", "0") or 0)
        att = proxy_check_in(db.session, vol.id, point_id, by_user_id=current_user().id, rules=scan_rules(),
                             clock=clock(), by_leader=not current_user().is_staff)
        record_action(db.session, actor(), "proxy", f"volunteer:{vol.id}", f"check_in; point={point_id}")
        db.session.commit()
        flash(_("已为 %(n)s 代签到（%(p)s）", n=vol.name, p=att.point_name), "success")
    except (DomainError, ValueError) as exc:
        db.session.rollback()
        flash(exc.message if isinstance(exc, DomainError) else _("请选择点位"), "error")
    return _back()


@bp.post("/<int:attendance_id>/check-out")
def check_out(attendance_id: int):
    """Ending someone else's patrol needs a stated reason (it is in the action log)."""
    reason = (request.form.get("reason") or "").strip()[:200]
    if len(reason) < MIN_REASON:
        flash(_("代签退需要填写原因"), "error")
        return _back()
    try:
        att = proxy_check_out(db.session, attendance_id, by_user_id=current_user().id, rules=scan_rules(),
                              clock=clock(), by_leader=not current_user().is_staff)
        record_action(db.session, actor(), "proxy", f"attendance:{attendance_id}", f"check_out; reason={reason}")
        db.session.commit()
        flash(_("已代签退，本次计 %(h).1f 小时", h=att.credited_hours), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return _back()
