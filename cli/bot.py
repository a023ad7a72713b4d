"""`flask --app app bot`: run the Telegram bot (and the outbox sender)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("bot", help="运行 Telegram 机器人（轮询；设置 TELEGRAM_WEBHOOK_URL 则用 webhook）；发送由 sender 进程负责")
@click.option("--sender-only", is_flag=True, help="同 `flask --app app sender`（保留旧用法）")
@click.option("--with-sender", is_flag=True, help="在机器人进程里也运行 Telegram 发送器（不要与 sender 进程同时在 SQLite 上使用）")
@click.option("--no-sender", is_flag=True, hidden=True, help="旧选项：现在默认就不发送")
@with_appcontext
def bot(sender_only: bool, with_sender: bool, no_sender: bool) -> None:
    app = current_app._get_current_object()
    if sender_only:
        from delivery.runner import run as run_sender

        run_sender(app)
        return
    if not app.config.get("TELEGRAM_BOT_TOKEN"):
        click.echo("Telegram 机器人未启用：未设置 TELEGRAM_BOT_TOKEN。消息会留在待发队列，并显示在网页收件箱里。")
        return
    from bot.app import run

    run(app, with_sender=with_sender and not no_sender)
