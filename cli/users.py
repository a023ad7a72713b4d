"""`flask --app app users ...`: coordinator accounts for the server operator."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from extensions import db
from models.user import ROLES
from services.errors import DomainError
from services.users import create_user, set_password


@click.group("users", help="管理平安办账号（管理员 / 协调员）")
def users() -> None:
    pass


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="coordinator", show_default=True)
@click.option("--name", "display_name", default=None, help="显示名称")
@click.password_option(help="密码（不给则提示输入）")
@with_appcontext
def create(username: str, role: str, display_name: str | None, password: str) -> None:
    """创建账号"""
    try:
        info = create_user(db.session, username, password, role, display_name)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"已创建账号 {info.username}（{info.role}）")


@users.command("set-password")
@click.argument("username")
@click.password_option()
@with_appcontext
def set_pw(username: str, password: str) -> None:
    """重设账号密码"""
    try:
        set_password(db.session, username, password)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"已更新 {username} 的密码")
