"""`flask --app app sender`: the outbox sender in its own process.

Why a process of its own: the bot process answers Telegram commands and must keep doing so while a
500-person notice is draining, and the SMS and WeCom channels need a sender whether or not a
Telegram token is set. `make run` always starts it; the deployment runs it as a unit of its own.
Each channel has its own sender loop with its own leader lock, so on PostgreSQL any number of
these processes may run (one sends per channel, the others stand by).
"""
from __future__ import annotations

import asyncio
import logging
import signal

from flask import Flask

from bot.bridge import Bridge

log = logging.getLogger(__name__)


def telegram_bot(config):
    """A bare `telegram.Bot` for sending (no polling: the bot process keeps the commands)."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    base = str(config.get("TELEGRAM_API_BASE_URL") or "https://api.telegram.org").rstrip("/")
    return Bot(config["TELEGRAM_BOT_TOKEN"], base_url=f"{base}/bot", base_file_url=f"{base}/file/bot",
               request=HTTPXRequest(connection_pool_size=16))


def build_senders(flask_app: Flask, bridge: Bridge) -> list:
    """One sender per configured channel, all sharing `OUTBOX_CONCURRENCY` in-flight requests."""
    from delivery.sms import SmsSender
    from delivery.wecom import WecomSender
    from services.sms.providers import provider_from_config

    cfg = flask_app.config
    slots = asyncio.Semaphore(int(cfg["OUTBOX_CONCURRENCY"]))
    stale = float(cfg["OUTBOX_STALE_CLAIM_SECONDS"])
    senders = []
    if cfg.get("TELEGRAM_BOT_TOKEN"):
        from bot.sender import OutboxSender
        senders.append(OutboxSender(bridge, telegram_bot(cfg), rate=float(cfg["OUTBOX_RATE_PER_SECOND"]),
                                    chat_interval=float(cfg["OUTBOX_CHAT_INTERVAL_SECONDS"]),
                                    concurrency=int(cfg["OUTBOX_CONCURRENCY"]), stale_after=stale, slots=slots,
                                    retry_max=float(cfg["TELEGRAM_RETRY_MAX_SECONDS"] or 60)))
    provider = provider_from_config(cfg)
    if provider is not None:
        senders.append(SmsSender(bridge, provider, rate=int(cfg["SMS_RATE_PER_SECOND"]), slots=slots,
                                 stale_after=stale))
    else:
        log.info("SMS off (set SMS_PROVIDER and its credentials): SMS items wait in the outbox")
    senders.append(WecomSender(bridge, slots=slots, stale_after=stale))
    return senders


async def run_senders(flask_app: Flask, stop: asyncio.Event) -> None:
    bridge = Bridge(flask_app)
    senders = build_senders(flask_app, bridge)
    for s in senders:
        await s.start()
    try:
        await asyncio.gather(*(s.run(stop) for s in senders), stop.wait())
    finally:
        for s in senders:
            await s.close()


def run(flask_app: Flask) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_senders(flask_app, stop)

    asyncio.run(main())
    return 0
