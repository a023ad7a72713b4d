"""Coordinator pages for the roster: search, import, detail, sign-in links, cards, devices."""
from __future__ import annotations

from datetime import date

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, send_file,
                   url_for)
from sqlalchemy import select
import io

from extensions import db
from keys import code_signer, data_cipher
from models.volunteer import Volunteer
from services.clock import local_date, local_zone
from services.errors import DomainError
from services.i18n import _
from services.imports import import_volunteers
from services.posters import CardItem, cards_pdf
from services.roster import export_roster
from services.signin import (card_url, issue_login_link, list_devices, revoke_all_devices, revoke_card,
                             revoke_device)
from services.volunteers import (get_volunteer, reinstate_volunteer, search_volunteers, teams,
                                 withdraw_volunteer)
from services.hours import volunteer_hours
from services.messaging import chat_link_of
from services.review import list_adjustments, list_attendances
from web.auth import actor, current_user
from web.runtime import now, scan_rules
from web.coord import import_page, protect, qr_data_uri

bp = protect(Blueprint("coord_volunteers", __name__, url_prefix="/coord/volunteers"))

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.get("/")
def index():
    page = search_volunteers(db.session, q=request.args.get("q", ""), team=request.args.get("team", ""),
                             status=request.args.get("status", ""), page=request.args.get("page", 1, type=int))
    return render_template("coord/volunteers/index.html", page=page, teams=teams(db.session),
                           q=request.args.get("q", ""), team=request.args.get("team", ""),
                           status=request.args.get("status", ""))


@bp.route("/import", methods=["GET", "POST"])
def import_roster():
    return import_page(
        lambda data, name: import_volunteers(db.session, data, name, cipher=data_cipher(),
                                             zone=local_zone(current_app.config["TIMEZONE"])),
        title=_("导入志愿者花名册"),
        help_lines=[_("必填列：姓名、手机号；可选：所属居委、马甲编号、身份证号、入队日期。"),
                    _("按手机号匹配：已有的更新，新的新增；空白单元格不会清除已有数据。"),
                    _("任何一行有错，整个文件都不会导入，并列出每一行错误。")],
        back=url_for("coord_volunteers.index"))


@bp.get("/<int:volunteer_id>")
def detail(volunteer_id: int):
    vol = get_volunteer(db.session, volunteer_id)
    year = request.args.get("year", type=int) or now().astimezone(scan_rules().zone).year
    return render_template("coord/volunteers/detail.html", vol=vol, devices=list_devices(db.session, vol.id),
                           today=local_date(now()), year=year, summary=volunteer_hours(db.session, vol.id, year),
                           adjustments=list_adjustments(db.session, vol.id),
                           attendances=list_attendances(db.session, volunteer_id=vol.id, per_page=20).rows,
                           telegram=chat_link_of(db.session, volunteer_id=vol.id))


@bp.post("/<int:volunteer_id>/login-link")
def login_link(volunteer_id: int):
    issued = issue_login_link(db.session, volunteer_id, base_url=current_app.config["PUBLIC_BASE_URL"],
                              created_by=actor(), valid_days=current_app.config["LOGIN_LINK_DAYS"])
    return render_template("coord/volunteers/link.html", issued=issued, qr=qr_data_uri(issued.url))


@bp.post("/<int:volunteer_id>/withdraw")
def withdraw(volunteer_id: int):
    try:
        on = date.fromisoformat(request.form.get("withdrawn_on", ""))
    except ValueError:
        flash(_("请填写有效的退出日期"), "error")
        return redirect(url_for(".detail", volunteer_id=volunteer_id))
    try:
        withdraw_volunteer(db.session, volunteer_id, on)
        revoke_all_devices(db.session, volunteer_id, by=actor())
        flash(_("已登记退出（%(d)s），其手机登录已全部注销", d=on.isoformat()), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/reinstate")
def reinstate(volunteer_id: int):
    reinstate_volunteer(db.session, volunteer_id)
    flash(_("已恢复为在册志愿者"), "success")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/devices/<int:device_id>/revoke")
def revoke(volunteer_id: int, device_id: int):
    revoke_device(db.session, device_id, by=actor(), volunteer_id=volunteer_id)
    flash(_("已注销该设备的登录"), "success")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/card/revoke")
def card_revoke(volunteer_id: int):
    revoke_card(db.session, volunteer_id)
    flash(_("旧志愿者卡已作废，请打印新卡"), "success")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.get("/<int:volunteer_id>/card.pdf")
def card_one(volunteer_id: int):
    vol = get_volunteer(db.session, volunteer_id)
    return _cards_response([vol], f"card-{vol.id}.pdf")


@bp.get("/cards.pdf")
def cards():
    team = request.args.get("team") or None
    stmt = select(Volunteer).where(Volunteer.status == "active").order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id)
    if team:
        stmt = stmt.where(Volunteer.team == team)
    return _cards_response(list(db.session.scalars(stmt)), "cards.pdf")


def _cards_response(vols, filename: str):
    base = current_app.config["PUBLIC_BASE_URL"]
    signer = code_signer()
    pdf = cards_pdf([CardItem(v.name, v.team, v.vest_no, card_url(base, signer, v)) for v in vols])
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=filename)


@bp.get("/export.xlsx")
def export():
    with_ids = request.args.get("with_id_numbers") == "1"
    if with_ids and not current_user().is_admin:
        abort(403)
    result = export_roster(db.session, cipher=data_cipher(), actor=actor(), include_id_numbers=with_ids,
                           team=request.args.get("team") or None)
    return send_file(io.BytesIO(result.content), mimetype=XLSX, download_name="volunteers.xlsx")
