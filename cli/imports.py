"""`flask --app app import volunteers|points|shifts FILE`."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from extensions import db
from keys import data_cipher
from services.audit_log import record_action
from services.clock import local_zone
from services.coords import SYSTEMS, WGS84
from services.checkin import ScanRules
from services.imports import ImportReport, import_attendance, import_points, import_shifts, import_volunteers


@click.group("import", help="从 .xlsx / .csv 导入花名册、点位、班次（全部成功才写入）")
def import_group() -> None:
    pass


def _finish(report: ImportReport) -> None:
    if report.ok:
        file = click.get_current_context().params.get("file")
        record_action(db.session, f"cli:{getpass.getuser()}", "import", report.kind,
                      f"file={Path(file).name[:100] if file else '?'}; rows={report.total_rows}; created={report.created}; "
                      f"updated={report.updated}; unchanged={report.unchanged}")
        db.session.commit()
        click.echo(report.summary())
        for line in report.notice_lines():
            click.echo(line)
        return
    click.echo(report.summary(), err=True)
    for line in report.lines():
        click.echo(line, err=True)
    sys.exit(1)


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


@import_group.command("volunteers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def volunteers(file: str) -> None:
    """导入志愿者花名册（按手机号新增或更新）"""
    _finish(import_volunteers(db.session, _read(file), file, cipher=data_cipher(), actor="cli",
                              zone=local_zone(current_app.config["TIMEZONE"]), can_see_id_numbers=True))


@import_group.command("points")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--coords", type=click.Choice(SYSTEMS), default=WGS84, show_default=True,
              help="文件中坐标的坐标系（没有“坐标系”列时使用）：gcj02=高德/腾讯，bd09=百度")
@with_appcontext
def points(file: str, coords: str) -> None:
    """导入巡逻点位（按点位编号新增或更新）"""
    _finish(import_points(db.session, _read(file), file, coords=coords))


@import_group.command("shifts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def shifts(file: str) -> None:
    """导入班次（时间为本地时间；新活动会自动创建）"""
    _finish(import_shifts(db.session, _read(file), file, zone=local_zone(current_app.config["TIMEZONE"])))


@import_group.command("attendance")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def attendance(file: str) -> None:
    """导入历史签到记录（纸质签到表；时间为本地时间；单独记为“历史导入”）"""
    import getpass

    _finish(import_attendance(db.session, _read(file), file, rules=ScanRules.from_config(current_app.config),
                              actor=f"cli:{getpass.getuser()}"))
