"""`flask --app app indicators|report|digest|scheduler`."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from extensions import db
from services.clock import SHANGHAI, local_date, local_zone, system_clock
from services.digest import digest_text, send_digest
from services.self_evaluation import evaluate
from services.messaging import message_reach, reach_text
from services.exports import attendance_tables, expenditure_table, hours_table, self_evaluation_xlsx
from services.spreadsheet import write_xlsx
from services.indicators import compute_indicators, report_as_dict
from services.programme_year import programme_year_of, year_dates

STATUS = {"green": "达成", "amber": "进行中", "red": "未达成"}


def _today():
    return local_date(system_clock(), local_zone(current_app.config["TIMEZONE"]))


def _year(year: int | None) -> int:
    """The given label, else the programme year today falls in (the installation's year start)."""
    return year if year is not None else programme_year_of(db.session, _today())


@click.command("indicators", help="计算年度 14 项绩效指标")
@click.option("--year", type=int, default=None, help="年度（默认今年，按截至今日计算）")
@click.option("--json", "as_json", is_flag=True, help="输出 JSON")
@click.option("--store", is_flag=True,
              help="计算今日所在年度并存入数据库，供各网页进程使用（调度器每 5 分钟运行一次）")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="按哪一天计算（默认今天）")
@with_appcontext
def indicators(year: int | None, as_json: bool, store: bool, today: datetime | None) -> None:
    day = today.date() if today else _today()
    if store and year is not None:
        raise click.UsageError("--store 总是计算 --today 所在的年度，不能同时指定 --year")
    if store:
        from services.indicator_snapshots import store_today

        snapshot = store_today(db.session, today=day)
        click.echo(json.dumps({"year": snapshot.report.year, "today": day.isoformat(), "seconds": snapshot.seconds}))
        return
    report = compute_indicators(db.session, year if year is not None else programme_year_of(db.session, day),
                                today=day)
    if as_json:
        click.echo(json.dumps(report_as_dict(report), ensure_ascii=False, indent=2, default=str))
        return
    click.echo(f"{report.year} 年绩效指标（截至 {report.as_of}）")
    for r in report.rows:
        click.echo(f"{r.number:>2}. [{STATUS[r.status]}] {r.name}：{r.actual}（目标 {r.target}）")


def _write(output: str, tables) -> None:
    """Streamed straight into the file (a district's year of patrols never sits in memory)."""
    with open(output, "wb") as fh:
        write_xlsx(fh, tables)


@click.group("report", help="导出报表")
def report() -> None:
    pass


@report.command("self-evaluation")
@click.option("--year", type=int, default=None)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def self_evaluation(year: int | None, output: str) -> None:
    """年度绩效自评表（.xlsx）"""
    data = compute_indicators(db.session, _year(year), today=_today())
    Path(output).write_bytes(self_evaluation_xlsx(data, evaluate(db.session, data)))
    click.echo(f"已导出 {data.year} 年绩效自评表 -> {output}")


@report.command("hours")
@click.option("--year", type=int, default=None)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def hours_report(year: int | None, output: str) -> None:
    """志愿者工时表（扫码、导入、人工分列）"""
    y = _year(year)
    _write(output, [hours_table(db.session, y, as_of=min(_today(), year_dates(db.session, y)[1]))])
    click.echo(f"-> {output}")


@report.command("attendance")
@click.option("--year", type=int, default=None)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def attendance_report(year: int | None, output: str) -> None:
    """签到记录明细"""
    _write(output, attendance_tables(db.session, _year(year)))
    click.echo(f"-> {output}")


@report.command("expenditures")
@click.option("--year", type=int, default=None)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def expenditure_report(year: int | None, output: str) -> None:
    """支出明细"""
    _write(output, [expenditure_table(db.session, _year(year))])
    click.echo(f"-> {output}")


@click.command("digest", help="生成并发送本周指标周报（--dry-run 只打印）")
@click.option("--dry-run", is_flag=True)
@with_appcontext
def digest(dry_run: bool) -> None:
    if dry_run:
        title, body = digest_text(db.session, now=datetime.now(SHANGHAI))
        click.echo(title)
        click.echo(body)
        return
    result = send_digest(db.session)
    if result is None:
        click.echo("没有启用的平安办账号，未发送。")
    elif result.created:
        click.echo(f"周报：{reach_text(message_reach(db.session, result.message_id))}")
    else:
        click.echo("本周周报已经发送过，未重复发送")


@click.command("scheduler", help="运行定时任务（提醒、签退提醒、自动结束、问卷、周报）；多开时只有一个生效")
@with_appcontext
def scheduler() -> None:
    from scheduler.runner import run
    run(current_app._get_current_object())


@click.command("programme-year-start", help="查看或设置年度起始日（月-日，默认 01-01；已有年度数据后不能修改）")
@click.argument("start", required=False)
@with_appcontext
def programme_year_start(start: str | None) -> None:
    from services.errors import DomainError
    from services.programme_year import set_year_start, year_start

    if start is None:
        click.echo(f"年度起始日：{year_start(db.session)}")
        return
    try:
        new = set_year_start(db.session, start, by="cli")
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"年度起始日已设为 {new}")
