"""Calling the (synchronous) services from the bot's asyncio loop.

Each call runs in a worker thread inside a Flask app context with its own database session, so
handlers stay thin and the event loop never blocks on the database.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, TypeVar

from flask import Flask

from extensions import db

T = TypeVar("T")


class Bridge:
    def __init__(self, flask_app: Flask) -> None:
        self.flask_app = flask_app

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
        return await asyncio.to_thread(self.call, fn, *args, **kwargs)
