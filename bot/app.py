"""`build_application(config)`: the Telegram bot, wired to the services and the outbox sender."""
from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Mapping

from flask import Flask
from telegram import BotCommand
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest

from bot import handlers, texts
from bot.bridge import Bridge
from bot.sender import OutboxSender, token_refused
from services.settings import TELEGRAM_BOT_USERNAME, set_setting

log = logging.getLogger(__name__)



def build_application(config: Mapping[str, Any], flask_app: Flask, *, request: BaseRequest | None = None,
                      updates_request: BaseRequest | None = None, with_sender: bool = True) -> Application:
    base = str(config.get("TELEGRAM_API_BASE_URL") or "https://api.telegram.org").rstrip("/")
    builder = (ApplicationBuilder().token(config["TELEGRAM_BOT_TOKEN"]).base_url(f"{base}/bot")
               .base_file_url(f"{base}/file/bot").post_init(_post_init).post_stop(_post_stop))
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
    application = builder.build()
    application.bot_data["bridge"] = Bridge(flask_app)
    application.bot_data["with_sender"] = with_sender
    handlers.register(application)
    return application


async def _post_init(application: Application) -> None:
    bridge: Bridge = application.bot_data["bridge"]
    username = application.bot.username
    if username:  # the web builds t.me deep links from it
        await bridge.run(set_setting, TELEGRAM_BOT_USERNAME, username, by="bot")
    try:
        # The default menu is the volunteers' (most people); a linked coordinator's chat gets its
        # own menu when they link or ask for /help (set_my_commands scoped to that chat).
        await application.bot.set_my_commands([BotCommand(c, d) for c, d in texts.commands_for(None, None)])
    except Exception:  # cosmetic; a Bot API server without it must not stop the bot
        log.warning("set_my_commands failed", exc_info=True)
    if application.bot_data.get("with_sender"):
        cfg = bridge.config
        sender = OutboxSender(bridge, application.bot, rate=float(cfg["OUTBOX_RATE_PER_SECOND"]),
                              chat_interval=float(cfg["OUTBOX_CHAT_INTERVAL_SECONDS"]),
                              concurrency=int(cfg["OUTBOX_CONCURRENCY"]),
                              stale_after=float(cfg["OUTBOX_STALE_CLAIM_SECONDS"]))
        sender.connected = True  # the application's bot reached the API before this hook runs
        stop = asyncio.Event()
        application.bot_data["sender_stop"] = stop
        application.bot_data["sender_task"] = asyncio.create_task(sender.run(stop))
    log.info("bot @%s started", username)


async def _post_stop(application: Application) -> None:
    stop = application.bot_data.get("sender_stop")
    task = application.bot_data.get("sender_task")
    if stop is not None:
        stop.set()
    if task is not None:
        try:
            await asyncio.wait_for(task, timeout=15)
        except asyncio.TimeoutError:
            task.cancel()


def webhook_secret(config: Mapping[str, Any]) -> str:
    """The secret Telegram sends back in every webhook call (checked by PTB's webhook server).

    `TELEGRAM_WEBHOOK_SECRET`, or one derived from `SECRET_KEY` so it survives restarts.
    """
    if config.get("TELEGRAM_WEBHOOK_SECRET"):
        return config["TELEGRAM_WEBHOOK_SECRET"]
    import hashlib
    import hmac
    return hmac.new(config["SECRET_KEY"].encode(), b"telegram-webhook", hashlib.sha256).hexdigest()[:48]


def wait_for_bot_api(config: Mapping[str, Any], *, first_delay: float = 1.0, max_delay: float = 60.0,
                     sleep=time.sleep) -> str:
    """Call getMe until the Bot API answers, with exponential backoff (and jitter).

    Why: PTB's start-up calls getMe once and the process exits on a 5xx or a timeout, so a
    Telegram hiccup while the server boots left the bot dead until someone noticed. A wrong token
    (401/404) is a configuration error and still stops at once.
    """
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, RetryAfter

    base = str(config.get("TELEGRAM_API_BASE_URL") or "https://api.telegram.org").rstrip("/")
    delay = first_delay
    while True:
        bot = Bot(config["TELEGRAM_BOT_TOKEN"], base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")
        try:
            me = asyncio.run(_get_me(bot))
            return me.username or ""
        except InvalidToken:
            raise token_refused() from None
        except RetryAfter as exc:
            retry_after = exc.retry_after
            wait = retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)
        except NetworkError as exc:  # 5xx, timeouts, refused connections (the token is never logged)
            wait = delay
            delay = min(max_delay, delay * 2)
            log.warning("Bot API not available (%s); retrying in %.0f s", type(exc).__name__, wait)
        sleep(wait * random.uniform(0.8, 1.2))


async def _get_me(bot):
    async with bot:
        return await bot.get_me()


def run(flask_app: Flask, *, polling: bool = True, with_sender: bool = False) -> int:
    """Run the bot until interrupted: polling, or webhook mode when TELEGRAM_WEBHOOK_URL is set."""
    config = flask_app.config
    wait_for_bot_api(config, max_delay=float(config.get("TELEGRAM_RETRY_MAX_SECONDS") or 60))
    application = build_application(config, flask_app, with_sender=with_sender)
    if config.get("TELEGRAM_WEBHOOK_URL") and polling:
        url = config["TELEGRAM_WEBHOOK_URL"]
        from urllib.parse import urlparse
        application.run_webhook(listen=config["TELEGRAM_WEBHOOK_LISTEN"], port=int(config["TELEGRAM_WEBHOOK_PORT"]),
                                url_path=urlparse(url).path.lstrip("/"), webhook_url=url,
                                secret_token=webhook_secret(config), allowed_updates=["message", "callback_query"])
    elif polling:
        application.run_polling(allowed_updates=["message", "callback_query"], poll_interval=0.0, timeout=10)
    else:
        asyncio.run(_sender_only(application))
    return 0


async def _sender_only(application: Application) -> None:
    """A standby/extra sender without polling (several may run against PostgreSQL)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with application:
        await _post_init(application)
        await stop.wait()
        await _post_stop(application)
