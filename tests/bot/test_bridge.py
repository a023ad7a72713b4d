"""The bot's and the sender's database calls run on the bridge's own few threads."""
from __future__ import annotations

import asyncio
import contextvars
import threading
import time

from bot.bridge import Bridge

_who = contextvars.ContextVar("who", default="nobody")


def test_many_calls_at_once_share_two_threads_and_keep_the_callers_context(app, monkeypatch):
    monkeypatch.setitem(app.config, "BRIDGE_DB_THREADS", 2)
    bridge = Bridge(app)
    seen: set[str] = set()
    names: list[str] = []

    def work(session, n: int) -> int:
        seen.add(threading.current_thread().name)
        names.append(_who.get())
        time.sleep(0.01)
        return n * 2

    async def main() -> list[int]:
        _who.set("sender")
        return await asyncio.gather(*(bridge.run(work, n) for n in range(16)))

    try:
        assert asyncio.run(main()) == [n * 2 for n in range(16)]
    finally:
        bridge.executor.shutdown()
    assert len(seen) == 2 and all(name.startswith("bridge-db") for name in seen)
    assert names == ["sender"] * 16
