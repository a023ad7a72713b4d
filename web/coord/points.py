"""Coordinator pages for patrol points: edit, rotate key, QR image, posters, import."""
from __future__ import annotations

import math

import io

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from extensions import db
from keys import code_signer
from models.point import PatrolPoint
from services.coords import SYSTEMS
from services.errors import DomainError
from services.i18n import _
from services.imports import import_points
from services.points import PointInput, create_point, update_point
from services.posters import PosterItem, posters_pdf
from services.qr import qr_png, rotate_point_key, scan_url
from web.coord import import_page, protect

bp = protect(Blueprint("coord_points", __name__, url_prefix="/coord/points"))


def _point(point_id: int) -> PatrolPoint:
    point = db.session.get(PatrolPoint, point_id)
    if point is None:
        raise DomainError("not_found", _("点位不存在"))
    return point


def _url(point: PatrolPoint) -> str:
    return scan_url(current_app.config["PUBLIC_BASE_URL"], code_signer(), point)


def _form_input() -> PointInput:
    form = request.form

    def number(name):
        raw = (form.get(name) or "").strip()
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise DomainError("bad_number", _("“%(v)s”不是数字", v=raw)) from None
        if not math.isfinite(value):
            raise DomainError("bad_number", _("“%(v)s”不是数字", v=raw))
        return value

    radius = number("radius_m")
    return PointInput(code=(form.get("code") or "").strip(), name=form.get("name") or "",
                      address=form.get("address"), lat=number("lat"), lon=number("lon"),
                      radius_m=int(radius) if radius is not None else 150,
                      coords=form.get("coords") or "wgs84", active=form.get("active") == "1")


@bp.get("/")
def index():
    points = db.session.scalars(select(PatrolPoint).order_by(PatrolPoint.code)).all()
    return render_template("coord/points/index.html", points=points)


@bp.route("/new", methods=["GET", "POST"])
def new():
    if request.method == "POST":
        try:
            point = create_point(db.session, _form_input())
            flash(_("已创建点位 %(c)s", c=point.code), "success")
            return redirect(url_for(".edit", point_id=point.id))
        except DomainError as exc:
            flash(exc.message, "error")
            return render_template("coord/points/form.html", point=None, form=request.form, systems=SYSTEMS), 400
    return render_template("coord/points/form.html", point=None, form={"radius_m": 150, "active": "1"},
                           systems=SYSTEMS)


@bp.route("/<int:point_id>", methods=["GET", "POST"])
def edit(point_id: int):
    point = _point(point_id)
    if request.method == "POST":
        try:
            update_point(db.session, point_id, _form_input())
            flash(_("已保存"), "success")
            return redirect(url_for(".edit", point_id=point_id))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return render_template("coord/points/form.html", point=point, form=request.form, systems=SYSTEMS,
                                   url=_url(point)), 400
    form = {"code": point.code, "name": point.name, "address": point.address or "", "lat": point.lat or "",
            "lon": point.lon or "", "radius_m": point.radius_m, "active": "1" if point.active else "0"}
    return render_template("coord/points/form.html", point=point, form=form, systems=SYSTEMS, url=_url(point))


@bp.post("/<int:point_id>/rotate")
def rotate(point_id: int):
    point = _point(point_id)
    rotated = rotate_point_key(db.session, point.code)
    flash(_("已更换 %(c)s 的二维码（第 %(v)d 版），旧海报已失效，请打印新海报", c=rotated.code, v=rotated.key_version),
          "success")
    return redirect(url_for(".edit", point_id=point_id))


@bp.get("/<int:point_id>/qr.png")
def qr(point_id: int):
    point = _point(point_id)
    return send_file(io.BytesIO(qr_png(_url(point))), mimetype="image/png", download_name=f"{point.code}.png")


@bp.get("/<int:point_id>/poster.pdf")
def poster(point_id: int):
    point = _point(point_id)
    pdf = posters_pdf([PosterItem(point.code, point.name, point.address, _url(point))])
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=f"poster-{point.code}.pdf")


@bp.get("/posters.pdf")
def posters():
    points = db.session.scalars(select(PatrolPoint).where(PatrolPoint.active.is_(True)).order_by(PatrolPoint.code))
    pdf = posters_pdf([PosterItem(p.code, p.name, p.address, _url(p)) for p in points])
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name="posters.pdf")


@bp.route("/import", methods=["GET", "POST"])
def import_file():
    return import_page(
        lambda data, name: import_points(db.session, data, name, coords=request.form.get("coords") or "wgs84"),
        title=_("导入巡逻点位"), systems=SYSTEMS,
        help_lines=[_("列：点位编号、点位名称、纬度、经度、半径、地址、坐标系（可选）。"),
                    _("从高德/腾讯地图复制的坐标选 gcj02，百度地图选 bd09，GPS 选 wgs84。")],
        back=url_for("coord_points.index"))
