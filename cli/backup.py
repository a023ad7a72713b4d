"""`flask --app app backup|restore`: the database to a file and back (services/backup.py)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from extensions import db
from services.backup import backup_file_name, engine_of, restore as restore_backup
from services.backup import backup as take_backup
from services.errors import DomainError


@click.command("backup", help="备份数据库（PostgreSQL：pg_dump 自定义格式；SQLite：在线备份）")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="备份文件（默认 BACKUP_DIR 下按时间命名）")
@with_appcontext
def backup(output: Path | None) -> None:
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if output is None:
        directory = current_app.config.get("BACKUP_DIR")
        if not directory:
            raise click.UsageError("give -o FILE, or set BACKUP_DIR")
        output = Path(directory) / backup_file_name(datetime.now(timezone.utc), engine_of(url))
    try:
        result = take_backup(url, output)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{result.path} ({result.size} bytes, {result.engine})")
    click.echo("密钥文件 instance/secret_key 与 instance/data_key 不在数据库备份中，请另行保管。")


@click.command("restore", help="从备份文件恢复数据库（目标库须为空，或加 --replace 覆盖）")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="覆盖已有数据（先停止网站、机器人和定时任务）")
@with_appcontext
def restore(backup_file: Path, replace: bool) -> None:
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    db.session.remove()
    db.engine.dispose()  # no pooled connection of ours may hold a lock the restore needs
    try:
        engine = restore_backup(url, backup_file, replace=replace)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"restored {backup_file} ({engine}); run `flask --app app db upgrade` if the code is newer")
