"""`flask --app app notices|surveys ...` and Telegram deep links from the command line."""
from __future__ import annotations

import getpass
import uuid

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from extensions import db
from models.event import Event
from services.errors import DomainError
from services.messaging import Audience, message_reach, reach_text, send_notice
from services.surveys import create_round, get_round, remind_round, results, send_round


@click.group("notices", help="巡逻通知")
def notices() -> None:
    pass


@notices.command("send")
@click.option("--text", required=True, help="通知内容")
@click.option("--team", default=None, help="只发给某个居委")
@click.option("--event", "event_name", default=None, help="只发给某个活动已安排的志愿者（活动名称）")
@click.option("--title", default=None, help="标题（默认“巡逻通知”）")
@with_appcontext
def send(text: str, team: str | None, event_name: str | None, title: str | None) -> None:
    """发送巡逻通知（经待发队列投递到 Telegram，并进入网页收件箱）"""
    if team and event_name:
        raise click.ClickException("--team 和 --event 只能选一个")
    audience = Audience("all")
    if team:
        audience = Audience("team", team)
    elif event_name:
        event_id = db.session.scalar(select(Event.id).where(Event.name == event_name))
        if event_id is None:
            raise click.ClickException(f"没有名为“{event_name}”的活动")
        audience = Audience("event", event_id)
    try:
        result = send_notice(db.session, text=text, audience=audience, nonce=f"cli:{uuid.uuid4().hex}",
                             created_by_user_id=None, title=title)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"通知 #{result.message_id}：{reach_text(message_reach(db.session, result.message_id))}"
               f"（by cli:{getpass.getuser()}）")


@click.group("surveys", help="满意度调查")
def surveys() -> None:
    pass


@surveys.command("create")
@click.argument("name")
@click.option("--question", default=None)
@with_appcontext
def create(name: str, question: str | None) -> None:
    """新建一轮调查（立即开放）"""
    try:
        r = create_round(db.session, name, question=question)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"已创建调查轮次“{r.name}”（#{r.id}）")


@surveys.command("send")
@click.option("--round", "round_name", default=None, help="轮次名称（默认：进行中的一轮）")
@click.option("--remind", is_flag=True, help="只提醒尚未作答的志愿者")
@with_appcontext
def send_survey(round_name: str | None, remind: bool) -> None:
    """向全体在册志愿者发送满意度调查（同一轮只发一次）"""
    try:
        r = get_round(db.session, round_name)
        result = remind_round(db.session, r.id) if remind else send_round(db.session, r.id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    state = reach_text(message_reach(db.session, result.message_id)) if result.created else "此前已发送，未重复发送"
    click.echo(f"“{r.name}”：{state}")


@surveys.command("results")
@click.option("--round", "round_name", default=None)
@with_appcontext
def show_results(round_name: str | None) -> None:
    """显示回收数、回收率、满意率"""
    try:
        r = get_round(db.session, round_name)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    res = results(db.session, r.id)
    click.echo(f"{res.name}：回收 {res.responses}/{res.eligible}（{res.response_rate:.1%}），"
               f"满意率 {res.satisfaction_rate:.1%}（满意+非常满意 {res.satisfied}）")
    for score, count in res.by_score.items():
        click.echo(f"  {score} 分：{count}")
