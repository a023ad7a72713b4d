"""The 14 indicators computed once and reused by the dashboard, every drill-down and the API, until
something changes: they read the whole year (3–4 s at district scale), and clicking through
fourteen drill-downs recomputed them fourteen times.

Invalidation: any commit in this process (a scan, a review, a ledger entry, an import…) starts a
new generation, and a result is kept at most `INDICATOR_CACHE_SECONDS` (60 s), which bounds how
stale a page can be after a change made by another process (another gunicorn worker, the bot, the
scheduler). The year-end self-evaluation export always computes afresh.
"""
from __future__ import annotations

import threading
import time
from datetime import date

from flask import current_app
from sqlalchemy import event
from sqlalchemy.engine import Engine

from extensions import db
from services.indicators import IndicatorReport, compute_indicators, with_evidence_limit

_lock = threading.Lock()
_cache: dict[tuple, tuple[float, int, IndicatorReport]] = {}
_generation = 0


@event.listens_for(Engine, "commit")
def _something_changed(_conn) -> None:
    global _generation
    _generation += 1


SHARED_EVIDENCE = 2000  # one computation with this much evidence serves every smaller limit


def cached_indicators(year: int, *, today: date, evidence_limit: int = 100) -> IndicatorReport:
    """The year's report, computed once for every page that needs at most `SHARED_EVIDENCE` names
    of evidence (the dashboard, the drill-downs, the digest preview, the JSON API) and cut to the
    `evidence_limit` asked for: a district's year takes seconds to compute."""
    limit = max(evidence_limit, SHARED_EVIDENCE)
    report = _cached(year, today, limit)
    return report if evidence_limit >= limit else with_evidence_limit(report, evidence_limit)


def _cached(year: int, today: date, evidence_limit: int) -> IndicatorReport:
    ttl = float(current_app.config.get("INDICATOR_CACHE_SECONDS", 60))
    key = (id(current_app._get_current_object()), year, today, evidence_limit)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[1] == _generation and time.monotonic() - hit[0] < ttl:
            return hit[2]
    report = compute_indicators(db.session, year, today=today, evidence_limit=evidence_limit)
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = (time.monotonic(), _generation, report)
    return report
