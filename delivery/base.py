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
from collections import deque
from datetime import datetime, timedelta, timezone

from bot.bridge import Bridge
from extensions import db
from services.outbox import Claimed, claim_due

log = logging.getLogger(__name__)
LOCK_KEYS = {"telegram": 72_031_001, "sms": 72_031_002, "wecom": 72_031_003}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RateWindow:
    """At most `count` starts in any `seconds` (sliding window)."""

    def __init__(self, count: int, seconds: float, clock=time.monotonic) -> None:
        self.count, self.seconds, self.clock = max(1, count), seconds, clock
        self.starts: deque[float] = deque()

    def wait_time(self) -> float:
        now = self.clock()
        while self.starts and self.starts[0] <= now - self.seconds:
            self.starts.popleft()
        return 0.0 if len(self.starts) < self.count else self.starts[0] + self.seconds - now

    async def acquire(self) -> None:
        while (wait := self.wait_time()) > 0:
            await asyncio.sleep(min(wait, 1.0))
        self.starts.append(self.clock())


class LeaderLock:
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
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


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
