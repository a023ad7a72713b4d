"""平安马甲 — application factory.

`flask --app app ...` finds `create_app` here. Tests pass a mapping of overrides.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Mapping

from flask import Flask, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

import access_log
import models  # noqa: F401  (registers every table on the metadata)
from config import DEFAULT_INSTANCE, _new_data_key, _new_secret, instance_key, load_config
from extensions import babel, csrf, db, limiter
from services.lengths import install_length_guard

SUPPORTED_LOCALES = ("zh", "en")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL lets readers work while a scan writes; foreign keys are off by default in SQLite."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def select_locale() -> str:
    """The person's choice first (?lang=, or the switch remembered in a cookie), then what the
    browser asks for; Chinese when it asks for no language we have, since the programme is Chinese."""
    if not has_request_context():
        return "zh"
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in SUPPORTED_LOCALES:
        return chosen
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or "zh"


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _trust_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For/-Proto from exactly TRUSTED_PROXY_HOPS proxies, and nothing else.

    Behind nginx (hops 1) the client address is the last X-Forwarded-For entry, the one nginx
    appended; anything the client wrote before it is ignored, so a spoofed header neither escapes
    its own rate limit nor uses up another client's. X-Forwarded-Host is not trusted: nginx passes
    the Host header itself, and every absolute URL is built from PUBLIC_BASE_URL anyway.
    """
    hops = int(app.config.get("TRUSTED_PROXY_HOPS") or 0)
    if hops < 0:
        raise ValueError("TRUSTED_PROXY_HOPS must be 0 or more")
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0,
                                x_prefix=0)


def create_app(test_config: Mapping[str, Any] | None = None, *, worker: bool = False) -> Flask:
    """The app for the web and the CLI; with `worker=True`, the same configuration, database and
    translations for the bot, the sender and the scheduler (`python -m bot|delivery|scheduler`)
    without what only answers HTTP or runs commands: the web layer (and the spreadsheet, PDF and
    OpenAPI libraries its views import), the rate limiter's Redis client, CSRF and Alembic. That is
    a fifth of those processes' memory (docs/performance.md)."""
    base = Path(__file__).resolve().parent
    overrides = dict(test_config or {})
    instance_path = Path(overrides.get("INSTANCE_PATH") or os.environ.get("INSTANCE_PATH") or DEFAULT_INSTANCE)
    instance_path.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(instance_path), instance_relative_config=False)
    app.config.update(load_config(instance_path))
    app.config.update(overrides)
    install_length_guard()

    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_key(instance_path, "secret_key", _new_secret)
    if not app.config.get("DATA_KEY"):
        app.config["DATA_KEY"] = instance_key(instance_path, "data_key", _new_data_key)

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if uri.startswith("sqlite"):
        engine_options["connect_args"] = {"timeout": app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000}
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(base / "translations"))

    # One line per event; [request id] ties the lines of one request together (web/metrics.py).
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
                                           defaults={"request_id": "-"}))
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"), handlers=[handler])
    # httpx logs every request's URL at INFO, and a Bot API URL holds the bot token (the bot and
    # the sender use httpx; so do the SMS and WeCom senders). Here, not with the web's logging:
    # the worker app has no web layer.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    access_log.install()

    db.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   timezone_selector=lambda: app.config["TIMEZONE"])
    if worker:
        return app

    from flask_migrate import Migrate
    Migrate(app, db, directory=str(base / "migrations"), render_as_batch=True)
    # Flask's own default (False) is already in app.config, so `setdefault` would never apply: the
    # session cookie is Secure whenever the public address is https://, unless set explicitly.
    if "SESSION_COOKIE_SECURE" not in overrides and os.environ.get("SESSION_COOKIE_SECURE", "") == "":
        app.config["SESSION_COOKIE_SECURE"] = app.config["PUBLIC_BASE_URL"].startswith("https://")
    else:
        app.config["SESSION_COOKIE_SECURE"] = _as_bool(overrides.get("SESSION_COOKIE_SECURE",
                                                                     os.environ.get("SESSION_COOKIE_SECURE")))
    _trust_proxies(app)
    csrf.init_app(app)
    limiter.init_app(app)

    from web import register_web
    register_web(app)

    from cli import register_cli
    register_cli(app)
    return app
