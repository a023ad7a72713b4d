"""`flask --app app sender`: the outbox sender (Telegram, SMS, WeCom group robots) in its own process."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("sender", help="运行待发队列发送器（Telegram、短信、企业微信群机器人）；PostgreSQL 上可多开备用")
@with_appcontext
def sender() -> None:
    from delivery.runner import run

    run(current_app._get_current_object())
