"""The loop every non-Telegram channel sender shares: lead, claim, send, record.

One active sender per channel: on PostgreSQL the holder of the channel's advisory lock sends and
other processes stand by; claims use `SKIP LOCKED` either way. All channel senders of one process
share one pool of `OUTBOX_CONCURRENCY` in-flight requests, so a crash can duplicate at most that
many messages, whatever the channels.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from datetime import datetime, timedelta, timezone

from bot.bridge import Bridge
from extensions import db
from services.outbox import Claimed, claim_due

log = logging.getLogger(__name__)
# PostgreSQL advisory lock keys, one per channel. They share one key space with the scheduler's
# (scheduler/runner.py, 72_031_002): the SMS sender's key was that same number, so on PostgreSQL the
# SMS sender and the scheduler stood by for each other's lock.
LOCK_KEYS = {"telegram": 72_031_001, "sms": 72_031_004, "wecom": 72_031_003}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RateWindow:
    """At most `count` sends in any `seconds` (sliding window), shared by every channel's sender.

    A send takes its place when it starts (`acquire`). With `hold_after`, `done(place)` keeps the
    place until that long after the request completed: a server counts requests when they *arrive*,
    and on a loaded machine one that started on time can arrive late, next to the ones after it
    (the Telegram sender holds each place a second after completion, so no `count` + 1 requests can
    arrive within one second whatever the latency).
    """

    def __init__(self, count: int, seconds: float, clock=time.monotonic, hold_after: float = 0.0) -> None:
        self.count, self.seconds, self.clock, self.hold_after = max(1, int(count)), seconds, clock, hold_after
        self.held: list[list[float]] = []  # [until] per send still counted in the window

    def wait_time(self) -> float:
        now = self.clock()
        self.held = [h for h in self.held if h[0] > now]
        return 0.0 if len(self.held) < self.count else min(h[0] for h in self.held) - now

    def take(self) -> list[float]:
        """Count a send starting now (the caller has checked `wait_time`)."""
        place = [self.clock() + self.seconds]
        self.held.append(place)
        return place

    async def acquire(self) -> list[float]:
        while (wait := self.wait_time()) > 0:
            await asyncio.sleep(min(wait, 1.0))
        return self.take()

    def done(self, place: list[float]) -> None:
        """The request finished: it keeps its place until `hold_after` after now."""
        place[0] = max(place[0], self.clock() + self.hold_after)
        if not any(h is place for h in self.held):
            self.held.append(place)


class LeaderLock:
    """One active sender per channel: on PostgreSQL the holder of the channel's advisory lock (held
    as long as its connection stays open, so a dead sender's lock goes with its connection); on
    SQLite there are no advisory locks and exactly one sender process must run."""

    def __init__(self, bridge: Bridge, key: int) -> None:
        self.bridge, self.key, self.conn = bridge, key, None

    def try_lead(self) -> bool:
        with self.bridge.flask_app.app_context():
            engine = db.engine
            if engine.dialect.name != "postgresql":
                return True
            conn = engine.connect()
            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self.key})").scalar()
            conn.commit()
            if got:
                self.conn = conn
                return True
            conn.close()
            return False

    def release(self) -> None:
        """Give the lock up. Closing the connection alone is not enough: it goes back to the pool
        with its PostgreSQL session, and the session-level lock with it (a standby in the same
        process could never take over), so the lock is released explicitly, or the connection
        discarded if that fails."""
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        try:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self.key})")
            conn.commit()
        except Exception:  # noqa: BLE001 - a broken connection: drop it, and its session's locks
            conn.invalidate()
        finally:
            conn.close()


class ChannelSender:
    channel = ""

    def __init__(self, bridge: Bridge, *, slots: asyncio.Semaphore, batch: int = 50, idle: float = 0.5,
                 stale_after: float = 60.0) -> None:
        self.bridge, self.slots = bridge, slots
        self.batch, self.idle = batch, idle
        self.stale_after = timedelta(seconds=stale_after)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{self.channel}"
        self.lock = LeaderLock(bridge, LOCK_KEYS[self.channel])

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def run(self, stop: asyncio.Event) -> None:
        leading = False
        try:
            while not stop.is_set():
                if not leading:
                    leading = await asyncio.to_thread(self.lock.try_lead)
                    if not leading:
                        await self._wait(stop, 2.0)
                        continue
                    log.info("%s is the active %s sender", self.worker, self.channel)
                batch = await self.bridge.run(claim_due, worker=self.worker, limit=self.batch, channel=self.channel,
                                              stale_after=self.stale_after)
                if not batch:
                    await self.after_idle()
                    await self._wait(stop, self.idle)
                    continue
                await self.send_batch(batch, stop)
        finally:
            await asyncio.to_thread(self.lock.release)

    async def after_idle(self) -> None:
        pass

    @staticmethod
    async def _wait(stop: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def send_batch(self, batch: list[Claimed], stop: asyncio.Event) -> None:
        raise NotImplementedError
