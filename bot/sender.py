"""The Telegram channel's outbox sender: drains queued messages to Telegram within its limits.

Limits (configurable): at most `OUTBOX_RATE_PER_SECOND` (25) sends in any second overall and at
least `OUTBOX_CHAT_INTERVAL_SECONDS` (1 s) between two sends to one chat; Telegram allows about
30/s and 1/s per chat. Both are enforced as sliding windows with a 10 % margin, so network jitter
does not make the server see more. A 429 pauses every send for its `retry_after`; network errors
retry with exponential backoff; a chat that blocked the bot is marked unreachable.

The loop, the leader lock and the rate window are the ones every channel shares
(`delivery.base.ChannelSender`, `LeaderLock`, `RateWindow`): rows are claimed with `FOR UPDATE SKIP
LOCKED` (never sent twice) and only the holder of the Telegram advisory lock sends (so the overall
rate holds across processes); the others stand by and take over when it stops. On SQLite run
exactly one sender process: SQLite has no advisory locks, and one machine is its use case.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.bridge import Bridge
from delivery.base import ChannelSender, RateWindow, utcnow
from models.messaging import CHANNEL_TELEGRAM
from services.outbox import Claimed, mark_failed, mark_retry, mark_sent, mark_unreachable, release

log = logging.getLogger(__name__)
MARGIN = 1.1


class Pacer:
    """The shared sliding window for the whole sender, plus Telegram's per-chat interval and pauses.

    Telegram counts requests when they *arrive*, the pacer when they *start*; on a loaded machine a
    request can start on time and arrive late, next to the ones after it. So a send occupies its
    place in the window until `MARGIN` after its start *and* one second after it completed
    (`done`): then no `rate` + 1 requests can arrive within one second, whatever the latency.
    """

    def __init__(self, rate: float, chat_interval: float, clock=time.monotonic) -> None:
        self.window = RateWindow(max(1, int(rate)), MARGIN, clock=clock, hold_after=1.0)
        self.chat_interval = chat_interval * MARGIN
        self.clock = clock
        self.last_by_chat: dict[int, float] = {}
        self.paused_until = 0.0

    def chat_wait(self, chat_id: int) -> float:
        last = self.last_by_chat.get(chat_id)
        return 0.0 if last is None else max(0.0, last + self.chat_interval - self.clock())

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    async def acquire(self, chat_id: int) -> list[float]:
        while True:
            now = self.clock()
            wait = max(self.paused_until - now, self.chat_wait(chat_id), self.window.wait_time())
            if wait <= 0:
                place = self.window.take()
                self.last_by_chat[chat_id] = now
                if len(self.last_by_chat) > 10_000:
                    cutoff = now - self.chat_interval
                    self.last_by_chat = {c: t for c, t in self.last_by_chat.items() if t > cutoff}
                return place
            await asyncio.sleep(min(wait, 1.0))

    def done(self, place: list[float]) -> None:
        """The request finished: it keeps its place until a second after that."""
        self.window.done(place)


def _markup(payload: dict) -> InlineKeyboardMarkup | None:
    rows = payload.get("buttons")
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b["text"], callback_data=b["data"]) for b in row]
                                 for row in rows])


def token_refused() -> SystemExit:
    """A wrong TELEGRAM_BOT_TOKEN ends the bot or the sender with this, not with PTB's
    `InvalidToken`, whose message quotes the token: the journal must not."""
    return SystemExit("TELEGRAM_BOT_TOKEN was refused by the Bot API: check it in the env file")


class OutboxSender(ChannelSender):
    channel = CHANNEL_TELEGRAM

    def __init__(self, bridge: Bridge, bot: Bot, *, rate: float = 25, chat_interval: float = 1.0,
                 concurrency: int = 4, batch: int = 50, idle: float = 0.5, stale_after: float = 60.0,
                 slots: asyncio.Semaphore | None = None, retry_max: float = 60.0) -> None:
        # `slots` is shared with the other channels' senders in the `sender` process (one crash
        # bound for all); the bot's own `--with-sender` has a pool of its own.
        super().__init__(bridge, slots=slots or asyncio.Semaphore(concurrency), batch=batch, idle=idle,
                         stale_after=stale_after)
        self.bot = bot
        self.pacer = Pacer(rate, chat_interval)
        self.concurrency = concurrency
        self.sent = 0
        self._outage = 0.0  # seconds of the current Bot API outage backoff (0: none)
        self.retry_max = max(1.0, retry_max)   # 0 or less would retry in a tight loop
        self.connected = False

    async def start(self) -> None:
        """Connect once. A wrong token stops the process here, loudly (a configuration error). The
        Bot API down or unreachable does not: the process would exit, and with it the SMS and WeCom
        senders beside this one, again at every restart (a server where Telegram is blocked).
        `run` then keeps trying with backoff, and the other channels send meanwhile."""
        self.connected = await self._connect()

    async def _connect(self) -> bool:
        try:
            await self.bot.initialize()  # getMe
        except InvalidToken:
            raise token_refused() from None
        except TelegramError as exc:  # 5xx, timeouts, refused connections, 429 (the token is never logged)
            log.warning("Bot API not available (%s); Telegram messages wait in the outbox", type(exc).__name__)
            return False
        # Open the connections the first batch will use: a send that first waits for a TCP/TLS
        # handshake arrives late and bunches up with the next ones, and the server counts arrivals.
        await asyncio.gather(*(self.bot.get_me() for _ in range(self.concurrency)), return_exceptions=True)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        delay = 1.0
        while not self.connected and not stop.is_set():
            await self._wait(stop, delay * random.uniform(0.8, 1.2))
            delay = min(self.retry_max, delay * 2)
            if not stop.is_set():
                self.connected = await self._connect()
        if self.connected:
            log.info("Bot API reached: sending Telegram messages")
        await super().run(stop)

    async def close(self) -> None:
        try:
            await self.bot.shutdown()
        except Exception:  # closing must not hide why the loop ended
            log.warning("closing the Telegram client failed", exc_info=True)

    async def send_batch(self, batch: list[Claimed], stop: asyncio.Event) -> None:
        sem = self.slots
        tasks: list[asyncio.Task] = []
        deferred: list[Claimed] = []
        for item in batch:
            if stop.is_set() or self.pacer.chat_wait(item.chat_id) > 0 or self.pacer.paused_until > self.pacer.clock():
                deferred.append(item)
                continue
            await sem.acquire()
            place = await self.pacer.acquire(item.chat_id)
            tasks.append(asyncio.create_task(self._send_one(item, sem, place)))
            # Let the request go out now: the pacer counted this start, and a task that waits for
            # the loop would reach the server late and bunch up with the next sends.
            await asyncio.sleep(0)
        if tasks:
            await asyncio.gather(*tasks)
        if deferred:
            delay = max([self.pacer.paused_until - self.pacer.clock(), 0.0]
                        + [self.pacer.chat_wait(i.chat_id) for i in deferred])
            await self.bridge.run(release, [i.id for i in deferred], at=utcnow() + timedelta(seconds=delay))

    async def _send_one(self, item: Claimed, sem: asyncio.Semaphore, place: list[float] | None = None) -> None:
        try:
            try:
                msg = await self.bot.send_message(chat_id=item.chat_id, text=item.payload["text"],
                                                  reply_markup=_markup(item.payload))
            finally:
                if place is not None:
                    self.pacer.done(place)
        except RetryAfter as exc:
            seconds = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") else float(exc.retry_after)
            self.pacer.pause(seconds)
            await self.bridge.run(mark_retry, item.id, error=f"429 retry after {seconds}s",
                                  at=utcnow() + timedelta(seconds=seconds), count_attempt=False)
        except Forbidden as exc:
            await self.bridge.run(mark_unreachable, item.id, item.chat_id, error=str(exc))
        except BadRequest as exc:
            await self.bridge.run(mark_failed, item.id, error=str(exc))
        except NetworkError as exc:
            # A 5xx, a timeout or a refused connection: the Bot API is down, not this message at
            # fault. Everyone waits (growing to a minute) and the attempt is not counted, so an
            # outage of any length fails nothing; it is all sent, once, when the API is back.
            self._outage = min(60.0, max(1.0, self._outage * 2))
            self.pacer.pause(self._outage)
            await self.bridge.run(mark_retry, item.id, error=f"{type(exc).__name__}: {exc}",
                                  at=utcnow() + timedelta(seconds=self._outage), count_attempt=False)
        except TelegramError as exc:
            backoff = min(300.0, 2.0 ** item.attempts)
            await self.bridge.run(mark_retry, item.id, error=f"{type(exc).__name__}: {exc}",
                                  at=utcnow() + timedelta(seconds=backoff))
        except Exception as exc:  # never let one message stop the loop
            log.exception("outbox item %s failed", item.id)
            await self.bridge.run(mark_retry, item.id, error=repr(exc), at=utcnow() + timedelta(seconds=30))
        else:
            self.sent += 1
            self._outage = 0.0
            await self.bridge.run(mark_sent, item.id, external_id=str(msg.message_id))
        finally:
            sem.release()
