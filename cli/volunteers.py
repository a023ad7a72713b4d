"""`flask --app app volunteers ...`."""
from __future__ import annotations

import getpass
from pathlib import Path

import click
from flask.cli import with_appcontext

from extensions import data_cipher, db
from services.roster import export_roster


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
    result = export_roster(db.session, cipher=data_cipher(), actor=actor,
                           include_id_numbers=with_id_numbers, team=team)
    Path(output).write_bytes(result.content)
    note = "（含完整身份证号，已记录此次导出）" if with_id_numbers else "（身份证号已打码）"
    click.echo(f"已导出 {result.rows} 名志愿者到 {output}{note}")
