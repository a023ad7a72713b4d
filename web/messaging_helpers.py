"""Shared by the volunteer and coordinator pages: the bot's username for t.me deep links."""
from __future__ import annotations

from flask import current_app

from extensions import db
from services.settings import TELEGRAM_BOT_USERNAME, get_setting


def bot_username() -> str:
    """From the environment, else what the running bot recorded from getMe ("" when the bot is off)."""
    return current_app.config.get("TELEGRAM_BOT_USERNAME") or get_setting(db.session, TELEGRAM_BOT_USERNAME)
