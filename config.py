"""Configuration read from the environment (12-factor).

Secrets are never constants in code: when `SECRET_KEY` or `DATA_KEY` is unset, a random key is
generated once and kept in the instance folder, so a demo works out of the box while a printed
poster or an encrypted ID number stays valid across restarts.
"""
from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_INSTANCE = BASE_DIR / "instance"


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def instance_key(instance_path: Path, filename: str, factory) -> str:
    """Return the key kept in `instance/<filename>`, creating it on first use.

    Why a file and not a constant: anyone reading the source must not be able to forge a poster
    token or decrypt an ID number. The file is created with mode 0600.
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / filename
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = factory()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def _new_secret() -> str:
    return secrets.token_urlsafe(48)


def _new_data_key() -> str:
    # A Fernet key: 32 random bytes, url-safe base64.
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(instance_path: Path | None = None) -> dict[str, Any]:
    """Build the configuration mapping from the environment (and an optional `.env`)."""
    load_dotenv(BASE_DIR / ".env", override=False)
    instance = Path(os.environ.get("INSTANCE_PATH") or instance_path or DEFAULT_INSTANCE)
    database_url = os.environ.get("DATABASE_URL") or ""
    demo_default = database_url == ""
    if not database_url:
        database_url = f"sqlite:///{instance / 'demo.db'}"
    database_url = normalise_database_url(database_url)

    return {
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "DATA_KEY": os.environ.get("DATA_KEY") or None,
        "PUBLIC_BASE_URL": (os.environ.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "TIMEZONE": os.environ.get("TIMEZONE") or "Asia/Shanghai",
        "DEMO": _env_bool("DEMO", demo_default),
        "SQLITE_BUSY_TIMEOUT_MS": _env_int("SQLITE_BUSY_TIMEOUT_MS", 5000),
        "BABEL_DEFAULT_LOCALE": os.environ.get("DEFAULT_LOCALE") or "zh",
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("TIMEZONE") or "Asia/Shanghai",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL") or "INFO",
        "LOGIN_LINK_DAYS": _env_int("LOGIN_LINK_DAYS", 7),
        # ID-matching imports (roster, insured list) a non-admin account may run per day (docs/security.md).
        "ID_IMPORT_DAILY_LIMIT": _env_int("ID_IMPORT_DAILY_LIMIT", 5),
        "GEOFENCE_MODE": (os.environ.get("GEOFENCE_MODE") or "flag").lower(),
        "SCAN_DEBOUNCE_SECONDS": _env_int("SCAN_DEBOUNCE_SECONDS", 60),
        "CHECKOUT_CONFIRM_MINUTES": _env_int("CHECKOUT_CONFIRM_MINUTES", 30),
        # A scan kept on a phone without signal counts at the phone's time only if it arrives
        # within this delay (minutes, or "2h" / "90m"); older ones wait for a coordinator.
        "OFFLINE_SCAN_MAX_DELAY": os.environ.get("OFFLINE_SCAN_MAX_DELAY") or "2h",
        # Scans per signed-in volunteer, all their phones together (never per address: volunteers
        # share carrier addresses; not per phone: one card signs in any number of phones), and
        # refused scans per address from phones that are not signed in. The older name
        # SCAN_RATE_LIMIT_PER_DEVICE is still read.
        "SCAN_RATE_LIMIT_PER_VOLUNTEER": (os.environ.get("SCAN_RATE_LIMIT_PER_VOLUNTEER")
                                          or os.environ.get("SCAN_RATE_LIMIT_PER_DEVICE") or "30 per minute"),
        "SCAN_RATE_LIMIT_ANONYMOUS": os.environ.get("SCAN_RATE_LIMIT_ANONYMOUS") or "10 per minute",
        "SCAN_WINDOW_BEFORE_MINUTES": _env_int("SCAN_WINDOW_BEFORE_MINUTES", 30),
        "SCAN_WINDOW_AFTER_MINUTES": _env_int("SCAN_WINDOW_AFTER_MINUTES", 30),
        "DAILY_CAP_HOURS": _env_int("DAILY_CAP_HOURS", 12),
        "TRAVEL_MAX_KMH": _env_int("TRAVEL_MAX_KMH", 30),
        # The board counts an assigned volunteer as missing this many minutes after the shift starts.
        "BOARD_MISSING_GRACE_MINUTES": _env_int("BOARD_MISSING_GRACE_MINUTES", 15),
        "INSURANCE_GATE": (os.environ.get("INSURANCE_GATE") or "flag").lower(),
        "REMINDER_LEAD_HOURS": os.environ.get("REMINDER_LEAD_HOURS") or "24,2",
        "SCHEDULER_TICK_SECONDS": _env_int("SCHEDULER_TICK_SECONDS", 300),
        "SCHEDULER_MISFIRE_GRACE_SECONDS": _env_int("SCHEDULER_MISFIRE_GRACE_SECONDS", 6 * 3600),
        "SCHEDULER_STANDBY_SECONDS": _env_int("SCHEDULER_STANDBY_SECONDS", 10),
        "TELEGRAM_BOT_TOKEN": os.environ.get("TELEGRAM_BOT_TOKEN") or "",
        "TELEGRAM_BOT_USERNAME": os.environ.get("TELEGRAM_BOT_USERNAME") or "",
        "TELEGRAM_API_BASE_URL": os.environ.get("TELEGRAM_API_BASE_URL") or "https://api.telegram.org",
        "TELEGRAM_WEBHOOK_URL": os.environ.get("TELEGRAM_WEBHOOK_URL") or "",
        "TELEGRAM_WEBHOOK_SECRET": os.environ.get("TELEGRAM_WEBHOOK_SECRET") or "",
        "TELEGRAM_WEBHOOK_LISTEN": os.environ.get("TELEGRAM_WEBHOOK_LISTEN") or "127.0.0.1",
        "TELEGRAM_WEBHOOK_PORT": _env_int("TELEGRAM_WEBHOOK_PORT", 8443),
        # The bot waits for the Bot API at start with backoff up to this many seconds between tries.
        "TELEGRAM_RETRY_MAX_SECONDS": float(os.environ.get("TELEGRAM_RETRY_MAX_SECONDS") or 60),
        "OUTBOX_RATE_PER_SECOND": _env_int("OUTBOX_RATE_PER_SECOND", 25),
        "OUTBOX_CHAT_INTERVAL_SECONDS": float(os.environ.get("OUTBOX_CHAT_INTERVAL_SECONDS") or 1.0),
        "OUTBOX_CONCURRENCY": _env_int("OUTBOX_CONCURRENCY", 4),
        "OUTBOX_STALE_CLAIM_SECONDS": _env_int("OUTBOX_STALE_CLAIM_SECONDS", 60),
        # SMS (docs/messaging.md): the provider and its credentials come from the environment only.
        "SMS_PROVIDER": (os.environ.get("SMS_PROVIDER") or "").lower(),   # aliyun | tencent | (off)
        "ALIBABA_CLOUD_ACCESS_KEY_ID": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID") or "",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET") or "",
        "SMS_ALIYUN_BASE_URL": os.environ.get("SMS_ALIYUN_BASE_URL") or "https://dysmsapi.aliyuncs.com",
        "TENCENTCLOUD_SECRET_ID": os.environ.get("TENCENTCLOUD_SECRET_ID") or "",
        "TENCENTCLOUD_SECRET_KEY": os.environ.get("TENCENTCLOUD_SECRET_KEY") or "",
        "TENCENT_SMS_SDK_APP_ID": os.environ.get("TENCENT_SMS_SDK_APP_ID") or "",
        "TENCENT_SMS_REGION": os.environ.get("TENCENT_SMS_REGION") or "ap-guangzhou",
        "SMS_TENCENT_BASE_URL": os.environ.get("SMS_TENCENT_BASE_URL") or "https://sms.tencentcloudapi.com",
        "SMS_RATE_PER_SECOND": _env_int("SMS_RATE_PER_SECOND", 20),
        # WeCom group robots: the webhook base is fixed; overriding it is for tests only.
        "WECOM_WEBHOOK_BASE": os.environ.get("WECOM_WEBHOOK_BASE") or "https://qyapi.weixin.qq.com/",
        # Nightly backups (scheduler): off unless BACKUP_DIR is set; the BACKUP_KEEP newest are kept.
        "BACKUP_DIR": os.environ.get("BACKUP_DIR") or "",
        "BACKUP_KEEP": _env_int("BACKUP_KEEP", 14),
        "BACKUP_HOUR": _env_int("BACKUP_HOUR", 3),
        # The indicator pages reuse one computation until a commit here, or for at most this long.
        "INDICATOR_CACHE_SECONDS": float(os.environ.get("INDICATOR_CACHE_SECONDS") or 60),
        # An older result is still shown (and recomputed in the background) for up to this long.
        "INDICATOR_STALE_SECONDS": float(os.environ.get("INDICATOR_STALE_SECONDS") or 900),
        # Threads the bot and the sender use for database calls (bot/bridge.py).
        "BRIDGE_DB_THREADS": _env_int("BRIDGE_DB_THREADS", 2),
        "INDICATOR_BACKGROUND_REFRESH": (os.environ.get("INDICATOR_BACKGROUND_REFRESH") or "1") != "0",
        # After the office's own change, a year computed faster than this is recomputed in the
        # request (the change shows at once); a slower one is shown "updating" until it is done.
        "INDICATOR_INLINE_SECONDS": float(os.environ.get("INDICATOR_INLINE_SECONDS") or 1.0),
        # The scheduler stores today's indicators this often for every process (0: never).
        "INDICATOR_SNAPSHOT_SECONDS": _env_int("INDICATOR_SNAPSHOT_SECONDS", 300),
        # 1: each web worker computes the year's indicators as it starts (off by default: at district
        # scale that is 2.5 s of CPU and ~30 MB per worker, taken from the scans after a restart).
        "INDICATOR_WARM_UP": (os.environ.get("INDICATOR_WARM_UP") or "0") == "1",
        # Prometheus /metrics answers only "Authorization: Bearer <METRICS_TOKEN>" (404 without it).
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or "",
        # memory:// counts per worker process; redis://host:6379/0 shares the counts between the
        # workers (gunicorn runs two), so a limit means what it says.
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or "memory://",
        # How many reverse proxies stand in front of the app (nginx: 1). With 0 the X-Forwarded-*
        # headers are ignored: anyone can send them, so trusting them without a proxy would let a
        # client choose its own rate-limit key.
        "TRUSTED_PROXY_HOPS": _env_int("TRUSTED_PROXY_HOPS", 0),
        # No X-RateLimit-* headers on every answer: reading the window back for them was a second
        # Redis round trip on every scan (13 % of a scan's time under load). A 429 still says when
        # to come back, in its Retry-After header and in words (web/__init__.py `too_many`).
        "RATELIMIT_HEADERS_ENABLED": False,
        # Redis down: count in this worker's memory rather than answer every request with a 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # A scan page left open for hours must still post: the CSRF token lives as long as the
        # session cookie, not an hour.
        "WTF_CSRF_TIME_LIMIT": None,
        "PERMANENT_SESSION_LIFETIME": 60 * 60 * 24 * 31,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        # SESSION_COOKIE_SECURE follows PUBLIC_BASE_URL (https:// → Secure) in create_app, unless the
        # environment sets it explicitly.
        "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,
        # Exports (docs/performance.md): above this many rows an export is built in the background
        # by the scheduler process (progress page, then a download link) instead of in the request;
        # the files are deleted this many days after they were built; the scheduler's export
        # worker looks for queued exports this often.
        "EXPORT_SYNC_MAX_ROWS": _env_int("EXPORT_SYNC_MAX_ROWS", 20_000),
        "EXPORT_RETENTION_DAYS": _env_int("EXPORT_RETENTION_DAYS", 7),
        "EXPORT_POLL_SECONDS": float(os.environ.get("EXPORT_POLL_SECONDS") or 3),
        # PIPL: scan coordinates are cleared after this many days (0 = never); docs/privacy.md.
        "SCAN_LOCATION_RETENTION_DAYS": _env_int("SCAN_LOCATION_RETENTION_DAYS", 400),
    }
