"""The outbox sender: drains queued messages to Telegram within Telegram's limits.

Limits (configurable): at most `OUTBOX_RATE_PER_SECOND` (25) sends in any second overall and at
least `OUTBOX_CHAT_INTERVAL_SECONDS` (1 s) between two sends to one chat; Telegram allows about
30/s and 1/s per chat. Both are enforced as sliding windows with a 10 % margin, so network jitter
does not make the server see more. A 429 pauses every send for its `retry_after`; network errors
retry with exponential backoff; a chat that blocked the bot is marked unreachable.

Several senders may run against one PostgreSQL database: rows are claimed with `FOR UPDATE SKIP
LOCKED` (never sent twice) and only the holder of an advisory lock sends (so the overall rate holds
across processes); the others stand by and take over when it stops. On SQLite run exactly one bot
process (it is the only sender): SQLite has no advisory locks, and one machine is its use case.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from datetime import datetime, timedelta, timezone

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.bridge import Bridge
from extensions import db
from models.messaging import CHANNEL_TELEGRAM
from services.outbox import Claimed, claim_due, mark_failed, mark_retry, mark_sent, mark_unreachable, release

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 72_031_001  # "平安马甲 outbox sender"
MARGIN = 1.1


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Pacer:
    """Sliding-window pacing for the whole sender and for each chat.

    Telegram counts requests when they *arrive*, the pacer when they *start*; on a loaded machine a
    request can start on time and arrive late, next to the ones after it. So a send occupies its
    place in the window until `MARGIN` after its start *and* one second after it completed
    (`done`): then no `rate` + 1 requests can arrive within one second, whatever the latency.
    """

    def __init__(self, rate: float, chat_interval: float, clock=time.monotonic) -> None:
        self.rate = max(1, int(rate))
        self.window = MARGIN
        self.chat_interval = chat_interval * MARGIN
        self.clock = clock
        self.held: list[list[float]] = []  # [until] per send still counted in the window
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
            self.held = [h for h in self.held if h[0] > now]
            waits = [self.paused_until - now, self.chat_wait(chat_id)]
            if len(self.held) >= self.rate:
                waits.append(min(h[0] for h in self.held) - now)
            wait = max(waits)
            if wait <= 0:
                place = [now + self.window]
                self.held.append(place)
                self.last_by_chat[chat_id] = now
                if len(self.last_by_chat) > 10_000:
                    cutoff = now - self.chat_interval
                    self.last_by_chat = {c: t for c, t in self.last_by_chat.items() if t > cutoff}
                return place
            await asyncio.sleep(min(wait, 1.0))

    def done(self, place: list[float]) -> None:
        """The request finished: it keeps its place until a second after that."""
        place[0] = max(place[0], self.clock() + 1.0)
        if not any(h is place for h in self.held):
            self.held.append(place)


def _markup(payload: dict) -> InlineKeyboardMarkup | None:
    rows = payload.get("buttons")
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b["text"], callback_data=b["data"]) for b in row]
                                 for row in rows])


class OutboxSender:
    def __init__(self, bridge: Bridge, bot: Bot, *, rate: float = 25, chat_interval: float = 1.0,
                 concurrency: int = 4, batch: int = 50, idle: float = 0.5, stale_after: float = 60.0,
                 slots: asyncio.Semaphore | None = None) -> None:
        self.bridge, self.bot = bridge, bot
        self.pacer = Pacer(rate, chat_interval)
        self.concurrency, self.batch, self.idle = concurrency, batch, idle
        # Shared with the other channels' senders in the `sender` process: one crash bound for all.
        self.slots = slots
        self.stale_after = timedelta(seconds=stale_after)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._lock_conn = None
        self.sent = 0

    async def start(self) -> None:
        await self.bot.initialize()  # getMe: a wrong token fails here, loudly
        # Open the connections the first batch will use: a send that first waits for a TCP/TLS
        # handshake arrives late and bunches up with the next ones, and the server counts arrivals.
        await asyncio.gather(*(self.bot.get_me() for _ in range(self.concurrency)), return_exceptions=True)

    async def close(self) -> None:
        try:
            await self.bot.shutdown()
        except Exception:  # closing must not hide why the loop ended
            log.warning("closing the Telegram client failed", exc_info=True)

    # --- leader election ------------------------------------------------------------------------
    def _try_lead(self) -> bool:
        with self.bridge.flask_app.app_context():
            engine = db.engine
            if engine.dialect.name != "postgresql":
                return True
            conn = engine.connect()
            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({ADVISORY_LOCK_KEY})").scalar()
            conn.commit()
            if got:
                self._lock_conn = conn  # held open: the lock lives as long as this connection
                log.info("outbox sender %s is the active sender", self.worker)
                return True
            conn.close()
            return False

    def _release_lead(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.close()
            finally:
                self._lock_conn = None

    # --- the loop -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        leading = False
        try:
            while not stop.is_set():
                if not leading:
                    leading = await asyncio.to_thread(self._try_lead)
                    if not leading:
                        await self._wait(stop, 2.0)
                        continue
                batch = await self.bridge.run(claim_due, worker=self.worker, limit=self.batch, channel=CHANNEL_TELEGRAM,
                                              stale_after=self.stale_after)
                if not batch:
                    await self._wait(stop, self.idle)
                    continue
                await self._send_batch(batch, stop)
        finally:
            await asyncio.to_thread(self._release_lead)

    @staticmethod
    async def _wait(stop: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _send_batch(self, batch: list[Claimed], stop: asyncio.Event) -> None:
        sem = self.slots or asyncio.Semaphore(self.concurrency)
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
            await self.bridge.run(release, [i.id for i in deferred], at=_utcnow() + timedelta(seconds=delay))

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
                                  at=_utcnow() + timedelta(seconds=seconds), count_attempt=False)
        except Forbidden as exc:
            await self.bridge.run(mark_unreachable, item.id, item.chat_id, error=str(exc))
        except BadRequest as exc:
            await self.bridge.run(mark_failed, item.id, error=str(exc))
        except (NetworkError, TelegramError) as exc:
            backoff = min(300.0, 2.0 ** item.attempts)
            await self.bridge.run(mark_retry, item.id, error=f"{type(exc).__name__}: {exc}",
                                  at=_utcnow() + timedelta(seconds=backoff))
        except Exception as exc:  # never let one message stop the loop
            log.exception("outbox item %s failed", item.id)
            await self.bridge.run(mark_retry, item.id, error=repr(exc), at=_utcnow() + timedelta(seconds=30))
        else:
            self.sent += 1
            await self.bridge.run(mark_sent, item.id, external_id=str(msg.message_id))
        finally:
            sem.release()
