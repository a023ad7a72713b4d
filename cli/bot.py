"""`flask --app app bot`: run the Telegram bot (and the outbox sender)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("bot", help="运行 Telegram 机器人（轮询；设置 TELEGRAM_WEBHOOK_URL 则用 webhook）及消息发送器")
@click.option("--sender-only", is_flag=True, help="只运行发送器（PostgreSQL 上可多开备用）")
@click.option("--no-sender", is_flag=True, help="只接收消息，不发送待发队列")
@with_appcontext
def bot(sender_only: bool, no_sender: bool) -> None:
    app = current_app._get_current_object()
    if not app.config.get("TELEGRAM_BOT_TOKEN"):
        click.echo("Telegram 机器人未启用：未设置 TELEGRAM_BOT_TOKEN。消息会留在待发队列，并显示在网页收件箱里。")
        return
    from bot.app import run

    run(app, polling=not sender_only, with_sender=not no_sender)
