"""Coordinator pages for the roster: search, import, detail, sign-in links, cards, devices."""
from __future__ import annotations

from datetime import date

from flask import (Blueprint, abort, current_app, flash, make_response, redirect, render_template, request,
                   send_file, url_for)
import io

from extensions import db
from keys import code_signer, data_cipher
from services.audit_log import record_action
from services.clock import local_date, local_zone
from services.errors import DomainError
from services.i18n import _
from services.imports import confirm_held_id_number, import_volunteers
from services.posters import CardItem, cards_pdf
from services.privacy import erase_volunteer, subject_access_export
from services.signin import (PHONE_FAILURE_LIMIT, card_url, issue_login_link, issue_pin, issue_pins,
                             lift_pin_lockout, list_devices, pin_status, revoke_all_devices_detail, revoke_card,
                             revoke_device)
from services.people import HOUR_BANDS, hours_by_campaign, roster, wechat_message
from services.volunteers import get_volunteer, reinstate_volunteer, teams, withdraw_volunteer
from services.hours import volunteer_hours
from services.programme_year import current_year
from services.messaging import chat_link_of
from services.review import list_adjustments, list_attendances
from web.indicator_cache import forget as forget_indicators
from web.auth import actor, current_user
from web.params import db_int, year_arg
from web.runtime import clock, now, scan_rules
from web.coord import import_page, protect, qr_data_uri
from web.coord.exports import send_or_queue

bp = protect(Blueprint("coord_volunteers", __name__, url_prefix="/coord/volunteers"))

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.get("/")
def index():
    args = request.args
    year = year_arg() or current_year(db.session, now(), scan_rules().zone)
    filters = {"q": args.get("q", ""), "team": args.get("team", ""), "status": args.get("status", ""),
               "band": args.get("band", ""), "not_signed_in": args.get("not_signed_in") == "1"}
    page = roster(db.session, year=year, page=args.get("page", 1, type=db_int), **filters)
    return render_template("coord/volunteers/index.html", page=page, teams=teams(db.session), year=year,
                           bands=[b[0] for b in HOUR_BANDS], **filters)


@bp.route("/import", methods=["GET", "POST"])
def import_roster():
    return import_page(
        lambda data, name: import_volunteers(db.session, data, name, cipher=data_cipher(), actor=actor(),
                                             zone=local_zone(current_app.config["TIMEZONE"]), clock=clock(),
                                             can_see_id_numbers=current_user().is_admin,
                                             id_import_daily_limit=current_app.config["ID_IMPORT_DAILY_LIMIT"]),
        title=_("导入志愿者花名册"),
        help_lines=[_("必填列：姓名、手机号；可选：所属居委、马甲编号、身份证号、入队日期。"),
                    _("按手机号匹配：已有的更新，新的新增；空白单元格不会清除已有数据。"),
                    _("任何一行有错，整个文件都不会导入，并列出每一行错误。")],
        back=url_for("coord_volunteers.index"))


@bp.get("/<int:volunteer_id>")
def detail(volunteer_id: int):
    vol = get_volunteer(db.session, volunteer_id)
    year = year_arg() or current_year(db.session, now(), scan_rules().zone)
    return render_template("coord/volunteers/detail.html", vol=vol, devices=list_devices(db.session, vol.id),
                           pin=pin_status(db.session, vol.id), pin_limit=PHONE_FAILURE_LIMIT,
                           today=local_date(now()), year=year, summary=volunteer_hours(db.session, vol.id, year),
                           adjustments=list_adjustments(db.session, vol.id),
                           attendances=list_attendances(db.session, volunteer_id=vol.id, per_page=20).rows,
                           telegram=chat_link_of(db.session, volunteer_id=vol.id),
                           campaigns=hours_by_campaign(db.session, vol.id, year))


@bp.post("/<int:volunteer_id>/login-link")
def login_link(volunteer_id: int):
    # The form's checkbox is on by default: a new link normally replaces the ones sent before.
    issued = issue_login_link(db.session, volunteer_id, base_url=current_app.config["PUBLIC_BASE_URL"],
                              created_by=actor(), valid_days=current_app.config["LOGIN_LINK_DAYS"],
                              cancel_older=request.form.get("cancel_older") == "1")
    return _no_store(render_template("coord/volunteers/link.html", issued=issued, qr=qr_data_uri(issued.url),
                                     message=wechat_message(issued.volunteer_name, issued.url, issued.expires_at,
                                                            scan_rules().zone)))


def _no_store(body):
    """Pages and files carrying a secret (a link, a PIN) are not kept by the browser or a proxy."""
    resp = make_response(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/<int:volunteer_id>/pin")
def pin_issue(volunteer_id: int):
    """A new personal PIN, shown this once (only its hash is kept); the old one stops working."""
    try:
        issued = issue_pin(db.session, volunteer_id, clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".detail", volunteer_id=volunteer_id))
    return _no_store(render_template("coord/volunteers/pin.html", issued=issued))


@bp.post("/<int:volunteer_id>/pin/unlock")
def pin_unlock(volunteer_id: int):
    lift_pin_lockout(db.session, volunteer_id)
    flash(_("已解除自助登录锁定"), "success")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/withdraw")
def withdraw(volunteer_id: int):
    try:
        on = date.fromisoformat(request.form.get("withdrawn_on", ""))
    except ValueError:
        flash(_("请填写有效的退出日期"), "error")
        return redirect(url_for(".detail", volunteer_id=volunteer_id))
    try:
        withdraw_volunteer(db.session, volunteer_id, on, rules=scan_rules(), clock=clock(), by=actor())
        if on <= local_date(now()):
            revoked = revoke_all_devices_detail(db.session, volunteer_id, by=actor())
            record_action(db.session, actor(), "revoke_device", f"volunteer:{volunteer_id}",
                          f"all; count={revoked.devices_signed_out}; chats unlinked={revoked.chats_unlinked}")
            db.session.commit()
            flash(_("已登记退出（%(d)s），其手机登录已全部注销，Telegram 绑定已解除", d=on.isoformat()), "success")
        else:  # until that date they still patrol with the phones they have
            flash(_("已登记退出（%(d)s）：此前仍可扫码签到", d=on.isoformat()), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/reinstate")
def reinstate(volunteer_id: int):
    try:
        reinstate_volunteer(db.session, volunteer_id, by=actor())
        flash(_("已恢复为在册志愿者"), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/devices/<int:device_id>/revoke")
def revoke(volunteer_id: int, device_id: int):
    unlinked = revoke_device(db.session, device_id, by=actor(), volunteer_id=volunteer_id, clock=clock())
    record_action(db.session, actor(), "revoke_device", f"volunteer:{volunteer_id}",
                  f"device={device_id}; chats unlinked={unlinked}")
    db.session.commit()
    if unlinked:
        flash(_("已注销该设备的登录，尚未使用的登录链接也已作废；从这部手机绑定的 Telegram 也已解除绑定"), "success")
    else:
        flash(_("已注销该设备的登录，尚未使用的登录链接也已作废"), "success")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/card/revoke")
def card_revoke(volunteer_id: int):
    revoked = revoke_card(db.session, volunteer_id, by=actor(), clock=clock())
    record_action(db.session, actor(), "revoke_card", f"volunteer:{volunteer_id}",
                  f"phones signed out={revoked.devices_signed_out}; chats unlinked={revoked.chats_unlinked}")
    db.session.commit()
    if revoked.chats_unlinked:
        flash(_("旧志愿者卡已作废，用它登录的 %(n)d 部手机已退出登录，从这些手机绑定的 Telegram 也已解除绑定，请打印新卡",
                n=revoked.devices_signed_out), "success")
    else:
        flash(_("旧志愿者卡已作废，用它登录的 %(n)d 部手机已退出登录，请打印新卡", n=revoked.devices_signed_out),
              "success")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/id-number/confirm")
def id_number_confirm(volunteer_id: int):
    """An admin checks an ID number a non-admin imported that was registered to someone else."""
    if not current_user().is_admin:
        abort(403)
    try:
        confirm_held_id_number(db.session, volunteer_id, cipher=data_cipher())
        record_action(db.session, actor(), "import", f"volunteer:{volunteer_id}", "id number checked")
        db.session.commit()
        flash(_("身份证号已核对，不与其他志愿者重复"), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.post("/<int:volunteer_id>/privacy/export")
def subject_export(volunteer_id: int):
    """A copy of everything held about the volunteer (PIPL data-subject request), admins only."""
    if not current_user().is_admin:
        abort(403)
    result = subject_access_export(db.session, volunteer_id, cipher=data_cipher(), actor=actor())
    db.session.commit()
    return send_file(io.BytesIO(result.content), mimetype="application/json", as_attachment=True,
                     download_name=result.filename)


@bp.post("/<int:volunteer_id>/privacy/erase")
def erase(volunteer_id: int):
    if not current_user().is_admin:
        abort(403)
    if request.form.get("confirm") != "1":
        flash(_("请勾选确认后再删除"), "error")
        return redirect(url_for(".detail", volunteer_id=volunteer_id))
    try:
        erase_volunteer(db.session, volunteer_id, actor=actor())
        forget_indicators()   # this worker's copies name the person too
        flash(_("已删除该志愿者的个人信息"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for(".detail", volunteer_id=volunteer_id))


@bp.get("/<int:volunteer_id>/card.pdf")
def card_one(volunteer_id: int):
    vol = get_volunteer(db.session, volunteer_id)
    return _cards_response([vol], f"card-{vol.id}.pdf")


@bp.post("/<int:volunteer_id>/card-with-pin.pdf")
def card_one_with_pin(volunteer_id: int):
    """The card with a new PIN printed on it (a POST: it changes the volunteer's PIN)."""
    vol = get_volunteer(db.session, volunteer_id)
    pins = issue_pins(db.session, [vol.id], clock=clock())
    return _cards_response([vol], f"card-{vol.id}.pdf", pins)


def _active_team(team: str | None):
    from services.volunteers import roster_for_cards
    from web.runtime import now

    return roster_for_cards(db.session, local_date(now()), team=team)


@bp.get("/cards.pdf")
def cards():
    return _cards_response(_active_team(request.args.get("team") or None), "cards.pdf")


@bp.post("/cards-with-pins.pdf")
def cards_with_pins():
    """Every active volunteer's card (or a team's) with a new PIN each: the old PINs stop working."""
    vols = _active_team(request.form.get("team") or None)
    pins = issue_pins(db.session, [v.id for v in vols], clock=clock())
    return _cards_response(vols, "cards.pdf", pins)


def _cards_response(vols, filename: str, pins: dict[int, str] | None = None):
    base = current_app.config["PUBLIC_BASE_URL"]
    signer = code_signer()
    pins = pins or {}
    pdf = cards_pdf([CardItem(v.name, v.team, v.vest_no, card_url(base, signer, v), pins.get(v.id)) for v in vols])
    record_action(db.session, actor(), "export", "cards" if len(vols) != 1 else f"volunteer:{vols[0].id}",
                  f"volunteer cards; count={len(vols)}; new PINs={len(pins)}; format=pdf")
    db.session.commit()
    resp = send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=filename)
    if pins:
        resp.headers["Cache-Control"] = "no-store"
    return resp


def _export(fmt: str):
    with_ids = request.args.get("with_id_numbers") == "1"
    if with_ids and not current_user().is_admin:
        abort(403)
    return send_or_queue("roster", {"team": request.args.get("team") or None, "with_id_numbers": with_ids}, fmt)


@bp.get("/export.xlsx")
def export():
    return _export("xlsx")


@bp.get("/export.csv")
def export_csv():
    return _export("csv")
