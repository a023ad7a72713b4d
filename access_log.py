"""Access logs without bearer secrets.

A sign-in link (`/login/<token>`) and a volunteer card (`/card/<code>`) sign a phone in: whoever
reads them in a log file can take over the account. The same holds for any survey or Telegram-link
token that ever travels in a URL. The request line, path, query and referrer of every access-log
record (Werkzeug's in `make run`, gunicorn's in `make serve`) are masked before they are written.
Poster tokens (`/p/<token>`) are printed on public posters and stay readable for debugging.

This module imports nothing from the app so that `gunicorn.conf.py` can load it in the master.
"""
from __future__ import annotations

import logging
import re

MASK = "***"
# First path segment of every URL that carries a secret in the next segment.
SECRET_PREFIXES = ("login", "card", "survey", "s", "tg", "telegram-link")
# Query parameters that may carry one (a Telegram deep link's `start`, a generic `token`).
SECRET_PARAMS = ("token", "start", "code", "secret")

_PATH_RE = re.compile(r'(^|[\s"\'(]|//[^/\s"\']+)(/(?:%s)/)[^/?#\s"\']+' % "|".join(map(re.escape, SECRET_PREFIXES)))
_QUERY_RE = re.compile(r"((?:^|[?&;])(?:%s)=)[^&;#\s\"']+" % "|".join(SECRET_PARAMS), re.IGNORECASE)

# Werkzeug's and gunicorn's access logs, gunicorn's error log, and the app's own logger (Flask
# logs "Exception on /login/<token> [GET]" there).
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "app")


def mask_secrets(text: str) -> str:
    """`GET /login/AbC?x=1 HTTP/1.1` → `GET /login/*** ?x=1 HTTP/1.1` (token segment and params)."""
    text = _PATH_RE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return _QUERY_RE.sub(lambda m: m.group(1) + MASK, text)


def _mask(value):
    return mask_secrets(value) if isinstance(value, str) else value


class TokenMaskFilter(logging.Filter):
    """Rewrites a record's message and arguments (a tuple for Werkzeug, a dict of atoms for gunicorn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _mask(record.msg)
        if isinstance(record.args, dict):
            # In place: gunicorn's atoms are a dict subclass that answers "-" for a missing header.
            for key, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[key] = mask_secrets(value)
        elif isinstance(record.args, tuple):
            record.args = tuple(_mask(v) for v in record.args)
        return True


def install(names: tuple[str, ...] = ACCESS_LOGGERS) -> None:
    """Add the filter once to each access logger (idempotent: create_app may run more than once)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenMaskFilter) for f in logger.filters):
            logger.addFilter(TokenMaskFilter())
