"""Coordinator pages for patrol records: filter, review flagged ones, adjust hours, import sheets."""
from __future__ import annotations

import math

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from extensions import db
from models.event import Event
from models.point import PatrolPoint
from services.errors import DomainError
from services.i18n import _
from services.imports import import_attendance
from services.evidence import record_evidence
from services.review import (add_adjustment, list_attendances, queue_shifts, refused_offline_scans, review_attendance,
                             review_many, review_queue_page)
from services.volunteers import teams
from web.auth import actor, current_user, safe_next
from web.coord import import_page, protect
from web.params import db_int
from web.runtime import clock, scan_rules

bp = protect(Blueprint("coord_attendance", __name__, url_prefix="/coord/attendance"))

def _filters() -> dict:
    args = request.args
    walk = args.get("walk_in")
    return {"event_id": args.get("event_id", type=db_int), "point_id": args.get("point_id", type=db_int),
            "team": args.get("team") or None, "review": args.get("review") or None, "flag": args.get("flag") or None,
            "source": args.get("source") or None, "walk_in": True if walk == "1" else None}


@bp.get("/")
def index():
    page = list_attendances(db.session, page=request.args.get("page", 1, type=db_int),
                            cursor=request.args.get("cursor") or None, **_filters())
    return render_template("coord/attendance.html", page=page, teams=teams(db.session),
                           events=db.session.scalars(select(Event).order_by(Event.starts_on.desc())).all(),
                           points=db.session.scalars(select(PatrolPoint).order_by(PatrolPoint.code)).all(),
                           args=request.args, refused_offline=refused_offline_scans(db.session))


FLAG_NAMES = ("no_location", "outside_geofence", "shared_device", "fast_travel", "auto_closed", "daily_cap",
              "uninsured", "unscheduled", "withdrawn", "offline_late", "proxy_by_leader")


def _back(default: str, anchor: str | None = None):
    """Back to the page the form was on; with `anchor`, at that record (`#att-<id>`), so that a
    coordinator deciding record 5 of a long queue is not thrown back to its top."""
    back = safe_next(request.form.get("back"), default)
    if not back.startswith("/coord/") or back == default:
        return redirect(default)
    return redirect(back + (f"#{anchor}" if anchor else ""))


def _anchor(field: str) -> str | None:
    value = request.form.get(field, type=db_int)
    return f"att-{value}" if value else None


@bp.get("/review")
def queue():
    """The records waiting for a decision, 50 at a time each with its evidence; decided one by one
    or the page's all at once. The shift and flag filters ride along with the page cursor."""
    shift_id = request.args.get("shift_id", type=db_int)
    flag = request.args.get("flag") if request.args.get("flag") in FLAG_NAMES else None
    try:
        page = review_queue_page(db.session, shift_id=shift_id, flag=flag, cursor=request.args.get("cursor") or None)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".queue", shift_id=shift_id, flag=flag))
    return render_template("coord/review.html", page=page, rows=page.rows,
                           evidence={r.id: record_evidence(db.session, r.id) for r in page.rows},
                           shifts=queue_shifts(db.session, include=shift_id), flags=FLAG_NAMES, shift_id=shift_id,
                           flag=flag)


@bp.post("/review")
def review_bulk():
    try:
        ids = [int(v) for v in request.form.getlist("ids")]
        done = review_many(db.session, ids, request.form.get("decision", ""), by_user_id=current_user().id,
                           rules=scan_rules(), clock=clock(), actor=actor(), reason=request.form.get("reason", ""))
        flash(_("已审核 %(n)d 条", n=done.decided) + (_("（%(s)d 条已由他人处理，未改动）", s=done.skipped)
                                                       if done.skipped else ""), "success")
    except ValueError:
        flash(_("没有选中任何记录"), "error")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return _back(url_for(".queue"))


@bp.post("/<int:attendance_id>/review")
def review(attendance_id: int):
    try:
        decision = request.form.get("decision", "")
        review_attendance(db.session, attendance_id, decision, by_user_id=current_user().id,
                          rules=scan_rules(), clock=clock(), actor=actor(), reason=request.form.get("reason", ""))
        who = request.form.get("name", "")[:64]
        flash((_("已通过：%(who)s", who=who) if decision == "approved" else _("已不通过：%(who)s", who=who))
              if who else _("已审核"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        # A refusal (e.g. no reason given) stays at the record it is about.
        return _back(url_for(".index"), f"att-{attendance_id}" if exc.code == "reason_required" else None)
    return _back(url_for(".index"), _anchor("next_id"))


@bp.post("/volunteer/<int:volunteer_id>/adjust")
def adjust(volunteer_id: int):
    try:
        hours_value = float(request.form.get("hours", ""))
        if not math.isfinite(hours_value):
            raise ValueError("not a finite number")
        work_date = date.fromisoformat(request.form.get("work_date", ""))
    except ValueError:
        flash(_("请填写有效的时长（小时，可为负数）和日期"), "error")
        return redirect(url_for("coord_volunteers.detail", volunteer_id=volunteer_id))
    try:
        add_adjustment(db.session, volunteer_id, minutes=round(hours_value * 60), work_date=work_date,
                       reason=request.form.get("reason", ""), by_user_id=current_user().id, clock=clock(),
                       actor=actor())
        flash(_("已登记调整 %(h)+.1f 小时", h=hours_value), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("coord_volunteers.detail", volunteer_id=volunteer_id))


@bp.route("/import", methods=["GET", "POST"])
def import_file():
    return import_page(
        lambda data, name: import_attendance(db.session, data, name, rules=scan_rules(),
                                             actor=f"user:{current_user().id}"),
        title=_("导入历史签到记录"),
        help_lines=[_("列：手机号、点位编号或活动、签到时间、签退时间、备注，可选“计划外”（是/否）；时间为北京时间。"),
                    _("按当天该点位（或该活动）的班次计时，只计班次起止时间之内；当天没有班次的记为计划外并待核对，"
                      "与当天所有班次都不重叠的行须在“计划外”列填“是”。"),
                    _("用于服务上线前的纸质签到表，或停电、手机没电时的纸质记录；这些时长单独记为“历史导入”。"),
                    _("签到、签退都空着的行（未到岗）会被跳过。")],
        back=url_for("coord_attendance.index"))
