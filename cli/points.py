"""`flask --app app points ...`: QR images, posters, key rotation."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from extensions import db
from keys import code_signer
from models.point import PatrolPoint
from services.errors import DomainError
from services.points import get_point_by_code
from services.posters import PosterItem, posters_pdf
from services.qr import qr_png, rotate_point_key, scan_url


@click.group("points", help="巡逻点位：二维码、海报、更换二维码")
def points() -> None:
    pass


def _point(code: str) -> PatrolPoint:
    try:
        return get_point_by_code(db.session, code)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None


def _url(point: PatrolPoint) -> str:
    return scan_url(current_app.config["PUBLIC_BASE_URL"], code_signer(), point)


@points.command("qr")
@click.argument("code")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def qr(code: str, output: str) -> None:
    """保存点位二维码 PNG"""
    point = _point(code)
    Path(output).write_bytes(qr_png(_url(point)))
    click.echo(f"{point.code} {point.name}: {_url(point)} -> {output}")


@points.command("poster")
@click.argument("code", required=False)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def poster(code: str | None, output: str) -> None:
    """A4 海报 PDF：指定点位编号则只生成一张，否则所有启用的点位各一页"""
    if code:
        selected = [_point(code)]
    else:
        selected = list(db.session.scalars(select(PatrolPoint).where(PatrolPoint.active.is_(True))
                                           .order_by(PatrolPoint.code)))
    Path(output).write_bytes(posters_pdf([PosterItem(p.code, p.name, p.address, _url(p)) for p in selected]))
    click.echo(f"已生成 {len(selected)} 张海报 -> {output}")


@points.command("rotate")
@click.argument("code")
@with_appcontext
def rotate(code: str) -> None:
    """更换点位二维码：已打印的旧海报全部失效"""
    try:
        rotated = rotate_point_key(db.session, code)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{rotated.code} 的二维码已更换为第 {rotated.key_version} 版，旧海报已失效。新地址：{_url(_point(code))}")
