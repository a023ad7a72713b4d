"""Calling the (synchronous) services from the bot's asyncio loop.

Each call runs in a worker thread inside a Flask app context with its own database session, so
handlers stay thin and the event loop never blocks on the database.

The threads are the bridge's own, `BRIDGE_DB_THREADS` of them (2), not asyncio's default pool: that
pool grows to cpu + 4 threads as soon as a broadcast keeps its sends in flight, each thread with its
own database connection and malloc arena. Two threads keep up with Telegram's 25 messages a second
with room to spare (marking a message sent takes a few milliseconds). (The sender's growth in a
broadcast's first minute turned out to be a claim that took the whole notice, services/outbox.py.)
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from flask import Flask

from extensions import db

T = TypeVar("T")


class Bridge:
    def __init__(self, flask_app: Flask) -> None:
        self.flask_app = flask_app
        self.executor = ThreadPoolExecutor(max_workers=max(1, int(flask_app.config.get("BRIDGE_DB_THREADS") or 2)),
                                           thread_name_prefix="bridge-db")

    @property
    def config(self):
        return self.flask_app.config

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.flask_app.app_context():
            try:
                return fn(db.session, *args, **kwargs)
            finally:
                db.session.remove()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # As asyncio.to_thread does: the caller's context variables travel with the call.
        context = contextvars.copy_context()
        call = functools.partial(context.run, self.call, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)
