"""The 14 indicators computed once and reused by the dashboard, every drill-down and the API, until
something changes: they read the whole year (2.5–5 s at district scale: 50,000 volunteers and half
a million records), and clicking through fourteen drill-downs recomputed them fourteen times.

Invalidation: a commit made by the office (a review, a ledger entry, an import, a coordinator's
edit, the CLI) starts a new generation, so their own change shows at once; a stamp such as a
session's "last seen" (`bookkeeping_commit`) does not. A volunteer's scan,
sign-in or survey answer does not: on a patrol night scans commit many times a second, and each
would otherwise have made the next coordinator page recompute the year. Those changes, and every
change made by another process (another gunicorn worker, the bot, the scheduler), show once the
result is `INDICATOR_CACHE_SECONDS` old (60 s).

An aged result is not recomputed while a coordinator waits: the page gets it and a background
thread in the same worker computes the new one (stale-while-revalidate), for at most
`INDICATOR_STALE_SECONDS` (15 min) after which the page computes afresh. Tests (app.testing) and
`INDICATOR_BACKGROUND_REFRESH=0` recompute in the request instead. The year-end self-evaluation
export always computes afresh.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import date, datetime

from flask import Flask, current_app, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from extensions import db
from services.transactions import is_bookkeeping_commit
from services.indicators import IndicatorReport, compute_indicators, with_evidence_limit

log = logging.getLogger(__name__)
_lock = threading.Lock()
_cache: dict[tuple, tuple[float, int, IndicatorReport]] = {}
_refreshing: set[tuple] = set()
_generation = 0
# Requests whose commits do not invalidate: a phone's scan, sign-in, survey answer, inbox.
_VOLUNTEER_BLUEPRINTS = frozenset({"scan", "signin", "api_v1", "main", "channels"})


@event.listens_for(Engine, "commit")
def _something_changed(_conn) -> None:
    global _generation
    if is_bookkeeping_commit() or (has_request_context() and request.blueprint in _VOLUNTEER_BLUEPRINTS):
        return
    _generation += 1


def _compute(app: Flask, key: tuple, year: int, today: date, evidence_limit: int) -> IndicatorReport:
    generation = _generation  # read before computing: a change during the computation wins
    report = compute_indicators(db.session, year, today=today, evidence_limit=evidence_limit)
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = (time.monotonic(), generation, report)
    return report


def _refresh_in_background(app: Flask, key: tuple, year: int, today: date, evidence_limit: int) -> None:
    with _lock:
        if key in _refreshing:
            return
        _refreshing.add(key)

    def run() -> None:
        try:
            with app.app_context():
                try:
                    _compute(app, key, year, today, evidence_limit)
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the next page computes in the request instead
            log.exception("indicator refresh failed")
        finally:
            with _lock:
                _refreshing.discard(key)

    threading.Thread(target=run, name="indicator-refresh", daemon=True).start()


SHARED_EVIDENCE = 2000  # one computation with this much evidence serves every smaller limit


def cached_indicators(year: int, *, today: date, evidence_limit: int = 100) -> IndicatorReport:
    """The year's report, computed once for every page that needs at most `SHARED_EVIDENCE` names
    of evidence (the dashboard, the drill-downs, the digest preview, the JSON API) and cut to the
    `evidence_limit` asked for: a district's year takes seconds to compute."""
    limit = max(evidence_limit, SHARED_EVIDENCE)
    report = _cached(year, today, limit)
    return report if evidence_limit >= limit else with_evidence_limit(report, evidence_limit)


def _cached(year: int, today: date, evidence_limit: int) -> IndicatorReport:
    app = current_app._get_current_object()
    ttl = float(app.config.get("INDICATOR_CACHE_SECONDS", 60))
    stale = float(app.config.get("INDICATOR_STALE_SECONDS", 900))
    background = app.config.get("INDICATOR_BACKGROUND_REFRESH", True) and not app.testing
    key = (id(app), year, today, evidence_limit)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[1] == _generation:
        age = time.monotonic() - hit[0]
        if age < ttl:
            return hit[2]
        if background and age < stale:
            _refresh_in_background(app, key, year, today, evidence_limit)
            return hit[2]
    return _compute(app, key, year, today, evidence_limit)


def warm_up(app: Flask) -> None:
    """Compute this programme year's indicators in a thread as a web worker starts (called from
    gunicorn's post_worker_init), so the office's first page after a restart does not wait the
    seconds a district's year takes. Only with INDICATOR_WARM_UP=1, never in tests: in the district
    soak, four workers computing at once on a restart took 10 s of CPU from the scans and left each
    worker about 30 MB larger whether or not anyone opened the indicators."""
    if not isinstance(app, Flask) or app.testing or not app.config.get("INDICATOR_WARM_UP"):
        return

    def run() -> None:
        from services.clock import local_zone
        from services.programme_year import programme_year_of

        try:
            with app.app_context():
                try:
                    today = datetime.now(local_zone(app.config["TIMEZONE"])).date()
                    year = programme_year_of(db.session, today)
                    _compute(app, (id(app), year, today, SHARED_EVIDENCE), year, today, SHARED_EVIDENCE)
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - a cold cache only costs the first page its wait
            log.exception("indicator warm-up failed")

    threading.Thread(target=run, name="indicator-warm-up", daemon=True).start()
