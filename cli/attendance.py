"""`flask --app app attendance ...`: forgotten check-outs and paper sign-in sheets."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from extensions import db
from services.checkin import ScanRules, close_forgotten
from services.errors import DomainError
from services.sheets import sheet_pdf, sheet_xlsx, shift_sheet


@click.group("attendance", help="签到记录：自动结束忘记签退的记录、纸质签到表")
def attendance() -> None:
    pass


@attendance.command("close-forgotten")
@with_appcontext
def close_forgotten_cmd() -> None:
    """结束签退时间窗已过仍未签退的记录（计到班次结束，标记待核对）"""
    closed = close_forgotten(db.session, rules=ScanRules.from_config(current_app.config))
    click.echo(f"已自动结束 {len(closed)} 条忘记签退的记录")


@attendance.command("sheet")
@click.argument("shift_id", type=int)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help=".pdf 打印用，.xlsx 录入后用 import attendance 导入")
@with_appcontext
def sheet(shift_id: int, output: str) -> None:
    """导出班次的纸质签到表（PDF）或同格式的 Excel"""
    try:
        data = shift_sheet(db.session, shift_id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    content = sheet_xlsx(data) if output.lower().endswith(".xlsx") else sheet_pdf(data)
    Path(output).write_bytes(content)
    click.echo(f"{data.event_name} {data.point_name}：{len(data.lines)} 名已安排的志愿者 -> {output}")
