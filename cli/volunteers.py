"""`flask --app app volunteers ...`."""
from __future__ import annotations

import getpass
from pathlib import Path

import click
from flask.cli import with_appcontext

from flask import current_app

from extensions import db
from keys import code_signer, data_cipher
from services.errors import DomainError
from services.posters import CardItem, cards_pdf
from services.audit_log import record_action
from services.roster import export_roster
from services.signin import card_url, find_volunteer_by_phone, issue_login_link, issue_pin, issue_pins


@click.group("volunteers", help="志愿者花名册")
def volunteers() -> None:
    pass


@volunteers.command("export")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="输出 .xlsx 文件")
@click.option("--team", default=None, help="只导出某个居委")
@click.option("--with-id-numbers", is_flag=True,
              help="导出完整身份证号（如给保险公司）；此操作会被记录")
@with_appcontext
def export(output: str, team: str | None, with_id_numbers: bool) -> None:
    """导出花名册（.xlsx，与导入格式相同；身份证号默认打码）"""
    actor = f"cli:{getpass.getuser()}"
    with open(output, "wb") as fh:  # streamed into the file
        result = export_roster(db.session, cipher=data_cipher(), actor=actor,
                               include_id_numbers=with_id_numbers, team=team, out=fh)
    record_action(db.session, actor, "export", "roster", f"rows={result.rows}; team={team or '*'}; "
                  f"id_numbers={'full' if with_id_numbers else 'masked'}; format=xlsx")
    db.session.commit()
    note = "（含完整身份证号，已记录此次导出）" if with_id_numbers else "（身份证号已打码）"
    click.echo(f"已导出 {result.rows} 名志愿者到 {output}{note}")


@volunteers.command("login-link")
@click.argument("phone")
@with_appcontext
def login_link(phone: str) -> None:
    """打印该志愿者的一次性登录链接"""
    try:
        vol = find_volunteer_by_phone(db.session, phone)
        issued = issue_login_link(db.session, vol.id, base_url=current_app.config["PUBLIC_BASE_URL"],
                                  created_by=f"cli:{getpass.getuser()}",
                                  valid_days=current_app.config["LOGIN_LINK_DAYS"])
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(issued.url)


@volunteers.command("pin")
@click.argument("phone")
@with_appcontext
def pin(phone: str) -> None:
    """为该志愿者发放新的 6 位登录 PIN（旧 PIN 失效，锁定解除；只显示这一次）"""
    try:
        vol = find_volunteer_by_phone(db.session, phone)
        issued = issue_pin(db.session, vol.id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{issued.volunteer_name} 的登录 PIN：{issued.pin}")


@volunteers.command("cards")
@click.option("--team", default=None, help="只打印某个居委")
@click.option("--new-pins", is_flag=True, help="为每人发放新的登录 PIN 并印在卡上（旧 PIN 失效）")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def cards(team: str | None, new_pins: bool, output: str) -> None:
    """打印志愿者卡 PDF（每个居委另起一页）"""
    from services.clock import local_date, system_clock
    from services.volunteers import roster_for_cards

    vols = roster_for_cards(db.session, local_date(system_clock()), team=team)
    pins = issue_pins(db.session, [v.id for v in vols]) if new_pins else {}
    base, signer = current_app.config["PUBLIC_BASE_URL"], code_signer()
    Path(output).write_bytes(cards_pdf([CardItem(v.name, v.team, v.vest_no, card_url(base, signer, v), pins.get(v.id))
                                        for v in vols]))
    click.echo(f"已生成 {len(vols)} 张志愿者卡 -> {output}")


@volunteers.command("telegram-link")
@click.argument("phone")
@with_appcontext
def telegram_link(phone: str) -> None:
    """打印该志愿者绑定 Telegram 的一次性链接"""
    from services.messaging import issue_chat_link
    from services.settings import TELEGRAM_BOT_USERNAME, get_setting

    username = current_app.config.get("TELEGRAM_BOT_USERNAME") or get_setting(db.session, TELEGRAM_BOT_USERNAME)
    try:
        vol = find_volunteer_by_phone(db.session, phone)
        click.echo(issue_chat_link(db.session, bot_username=username, volunteer_id=vol.id))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
