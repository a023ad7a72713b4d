"""`flask --app app demo`: load the demo programme and print how to get in."""
from __future__ import annotations

import secrets

import click
from flask import current_app
from flask.cli import with_appcontext
from pathlib import Path

from config import instance_key
from sqlalchemy import select

from extensions import db
from keys import code_signer, data_cipher
from models.point import PatrolPoint
from models.volunteer import STATUS_ACTIVE, Volunteer
from services.qr import scan_url
from services.signin import issue_login_link
from services.demo import is_empty, load_demo


def _demo_password() -> str:
    return instance_key(Path(current_app.config["INSTANCE_PATH"]), "demo_admin_password",
                        lambda: secrets.token_urlsafe(9))


@click.command("demo", help="载入演示项目（500 名志愿者、12 个点位、重大节点班次），仅在空数据库中")
@click.option("--auto", is_flag=True,
              help="供 make run 使用：只有在未设 DATABASE_URL 或 DEMO=1 时才载入")
@with_appcontext
def demo(auto: bool) -> None:
    if auto and not current_app.config.get("DEMO"):
        click.echo("DATABASE_URL 已设置且未设 DEMO=1：不载入演示数据。")
        return
    if is_empty(db.session):
        info = load_demo(db.session, cipher=data_cipher(), admin_password=_demo_password())
        click.echo(f"已载入演示项目：{info.volunteers} 名志愿者，{info.points} 个点位，"
                   f"{info.events} 个活动，{info.shifts} 个班次。")
    else:
        click.echo("数据库已有数据：未重复载入演示项目。")
    base = current_app.config["PUBLIC_BASE_URL"]
    password_file = Path(current_app.config["INSTANCE_PATH"]) / "demo_admin_password"
    click.echo("")
    click.echo("=" * 60)
    click.echo(f"  平安马甲 演示：{base}/")
    if password_file.exists():
        click.echo(f"  平安办后台：{base}/coord/   账号：admin   密码：{password_file.read_text().strip()}")
    vol = db.session.scalar(select(Volunteer).where(Volunteer.status == STATUS_ACTIVE).order_by(Volunteer.id))
    if vol is not None:
        issued = issue_login_link(db.session, vol.id, base_url=base, created_by="demo",
                                  valid_days=current_app.config["LOGIN_LINK_DAYS"])
        click.echo(f"  志愿者 {vol.name}（{vol.vest_no}）的一次性登录链接：{issued.url}")
    point = db.session.scalar(select(PatrolPoint).where(PatrolPoint.active.is_(True)).order_by(PatrolPoint.code))
    if point is not None:
        click.echo(f"  点位 {point.code} {point.name} 的扫码地址：{scan_url(base, code_signer(), point)}")
    click.echo("=" * 60)
