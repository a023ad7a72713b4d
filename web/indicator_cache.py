"""The 14 indicators computed once and reused by the dashboard, every drill-down and the API, until
something changes: they read the whole year (2.5–5 s at district scale: 50,000 volunteers and half
a million records), and clicking through fourteen drill-downs recomputed them fourteen times.

Two levels. Each web worker keeps the reports it served in memory; behind that, every process
shares the last computation of each year in the database (`indicator_snapshots`,
services/indicator_snapshots.py), which the scheduler refreshes every `INDICATOR_SNAPSHOT_SECONDS`
for today. So a worker that has just started answers from the table instead of computing the year
while a coordinator waits, and a computation made by one worker serves the others: each page
looks up the stored one's start time (one indexed row) and reads it only when it is newer.

Invalidation: a commit made by the office (a review, a ledger entry, an import, a coordinator's
edit, the CLI) in this process starts a new generation; a stamp such as a session's "last seen"
(`bookkeeping`) does not. A volunteer's scan, sign-in or survey answer does not either: on a
patrol night scans commit many times a second, and each would otherwise have made the next
coordinator page recompute the year. An office request that committed leaves its time in
`indicator_marks` as it ends, so every web worker treats reports started before it as overtaken.
Other changes (scans, the CLI, the scheduler's jobs) show at the next stored computation: a
worker recomputes a report only once it is `INDICATOR_SNAPSHOT_SECONDS` + 60 s old while the
scheduler stores them, `INDICATOR_CACHE_SECONDS` (60 s) without it. An erasure's time is marked
too: a report started before it is dropped everywhere (it may name the person).

Nobody waits for a long computation if figures exist: an aged result is served while a thread in
the same worker computes the new one (stale-while-revalidate), for at most `INDICATOR_STALE_SECONDS`
(15 min) after which the page computes afresh. After the office's own change, a year that computes
in under `INDICATOR_INLINE_SECONDS` (a small programme) is computed in the request, so the change
shows at once; a longer one is served as it was, marked "updating" (the page says so and reloads
itself), while the thread computes. Tests (app.testing) and `INDICATOR_BACKGROUND_REFRESH=0`
compute in the request instead. The year-end self-evaluation export always computes afresh.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from extensions import db
from services.clock import system_clock
from services.i18n import in_programme_language
from services.indicator_snapshots import (SHARED_EVIDENCE, Marks, Snapshot, compute_snapshot, load_snapshot, mark_changed,
                                         read_marks, save_snapshot)
from services.indicators import IndicatorReport, with_evidence_limit
from services.transactions import is_bookkeeping_commit

log = logging.getLogger(__name__)
_lock = threading.Lock()
_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Entry:
    snapshot: Snapshot
    generation: int   # this process's generation when the computation started


_cache: dict[tuple, _Entry] = {}
_refreshing: set[tuple] = set()
_failed: set[tuple] = set()   # the last background computation failed: the next page computes (and shows why)
_generation = 0
_changed_at = _EPOCH   # the last office commit in this process (UTC)
_forgotten_at = _EPOCH  # the last erasure done by this process (UTC)
# Requests whose commits change no figure: a phone's scan, sign-in, survey answer, inbox; a
# coordinator's sign-in, inbox and export queue.
_NO_FIGURE_BLUEPRINTS = frozenset({"scan", "signin", "api_v1", "main", "channels",
                                   "coord_auth", "coord_inbox", "coord_exports"})


@event.listens_for(Engine, "commit")
def _something_changed(_conn) -> None:
    global _generation, _changed_at
    if is_bookkeeping_commit() or (has_request_context() and request.blueprint in _NO_FIGURE_BLUEPRINTS):
        return
    _generation += 1
    _changed_at = system_clock()
    if has_request_context():
        g.pingan_indicators_changed = True   # told to the other processes as the request ends


def _tell_other_processes(_exc: BaseException | None = None) -> None:
    """An office request that changed something leaves the time in `indicator_marks`: every web
    worker then shows the reports started before it as "updating", not only this one."""
    if not g.pop("pingan_indicators_changed", False):
        return
    try:
        with Session(db.engine) as own:
            mark_changed(own, system_clock())
    except Exception:  # noqa: BLE001 - the others then show the change within INDICATOR_CACHE_SECONDS
        log.warning("indicator change mark not stored", exc_info=True)


def init_app(app: Flask) -> None:
    app.teardown_request(_tell_other_processes)


def forget() -> None:
    """Drop this worker's reports (after an erasure: they name volunteers) and any computation
    already running here from being kept."""
    global _forgotten_at
    with _lock:
        _forgotten_at = system_clock()
        _cache.clear()


def _age(snapshot: Snapshot) -> float:
    return (system_clock() - snapshot.computed_at).total_seconds()


def _remember(key: tuple, entry: _Entry) -> None:
    with _lock:
        if entry.snapshot.started_at <= _forgotten_at:
            return   # started before an erasure here: it may name the person
        if len(_cache) > 64:
            _cache.clear()
        held = _cache.get(key)
        if held is None or held.snapshot.started_at <= entry.snapshot.started_at:
            _cache[key] = entry


def _compute(app: Flask, key: tuple, year: int, today: date, evidence_limit: int) -> Snapshot:
    generation = _generation  # read before computing: a change during the computation wins
    # In Chinese whatever the page's language: the report is shared by every page and process
    # (the scheduler's child and the background thread compute in Chinese too).
    with in_programme_language():
        snapshot = compute_snapshot(db.session, year, today=today, evidence_limit=evidence_limit)
    _remember(key, _Entry(snapshot, generation))
    try:
        with Session(db.engine) as own:   # its own transaction: the request's session is left alone
            save_snapshot(own, snapshot, evidence_limit=evidence_limit)
    except Exception:  # noqa: BLE001 - the figures are computed; only the other processes miss them
        log.warning("indicator snapshot not stored", exc_info=True)
    return snapshot


def _read(what: str, read, default):
    """Read the stored report or the marks; on failure (e.g. a database not yet migrated) go on
    without them: the page computes, or knows only this process's own changes."""
    try:
        return read()
    except Exception:  # noqa: BLE001
        log.warning("indicator %s not read", what, exc_info=True)
        db.session.rollback()
        return default


def _load(year: int, today: date, evidence_limit: int, *, newer_than: datetime | None) -> Snapshot | None:
    """The snapshot another process (or this one, before a restart) stored, if newer than what
    this worker holds."""
    return _read("snapshot", lambda: load_snapshot(db.session, year, today, evidence_limit, newer_than=newer_than),
                 None)


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
            with _lock:
                _failed.add(key)
        finally:
            with _lock:
                _refreshing.discard(key)

    threading.Thread(target=run, name="indicator-refresh", daemon=True).start()


def cached_indicators(year: int, *, today: date, evidence_limit: int = 100) -> IndicatorReport:
    """The year's report, computed once for every page that needs at most `SHARED_EVIDENCE` names
    of evidence (the dashboard, the drill-downs, the digest preview, the JSON API) and cut to the
    `evidence_limit` asked for: a district's year takes seconds to compute."""
    limit = max(evidence_limit, SHARED_EVIDENCE)
    report = _cached(year, today, limit)
    return report if evidence_limit >= limit else with_evidence_limit(report, evidence_limit)


def _served(snapshot: Snapshot, *, updating: bool = False) -> IndicatorReport:
    return replace(snapshot.report, computed_at=snapshot.computed_at, updating=updating)


def _adopt(snapshot: Snapshot, generation: int, changed: datetime) -> _Entry:
    """An entry for a stored report: current if it was started after the last change known here."""
    return _Entry(snapshot, generation if snapshot.started_at > changed else -1)


def _cached(year: int, today: date, evidence_limit: int) -> IndicatorReport:
    app = current_app._get_current_object()
    config = app.config
    ttl = float(config.get("INDICATOR_CACHE_SECONDS", 60))
    stale = float(config.get("INDICATOR_STALE_SECONDS", 900))
    inline = float(config.get("INDICATOR_INLINE_SECONDS", 1.0))
    # While the scheduler stores the year every few minutes, a worker leaves recomputing to it
    # (each computation costs a worker seconds of CPU and memory it keeps).
    interval = float(config.get("INDICATOR_SNAPSHOT_SECONDS") or 0)
    fresh = max(ttl, interval + 60) if interval > 0 else ttl
    key = (id(app), year, today, evidence_limit)
    generation = _generation
    marks = _read("marks", lambda: read_marks(db.session), Marks())
    changed = max(_changed_at, marks.changed_at or _EPOCH)
    forgotten = max(_forgotten_at, marks.forgotten_at or _EPOCH)
    with _lock:
        held = _cache.get(key)
        if held is not None and held.snapshot.started_at <= forgotten:
            held = None   # it may name a person whose data was erased since
            _cache.pop(key, None)
        failed = key in _failed
        _failed.discard(key)
    background = config.get("INDICATOR_BACKGROUND_REFRESH", True) and not app.testing and not failed
    if held is not None and held.snapshot.started_at <= changed:
        held = replace(held, generation=-1)   # overtaken by a change made in another process
    # Another process may have stored a newer computation: a look at one row's time, the report
    # itself read only when it is newer than the one held.
    newer_than = max(held.snapshot.started_at if held else _EPOCH, forgotten)
    stored = _load(year, today, evidence_limit, newer_than=newer_than if newer_than > _EPOCH else None)
    if stored is not None:
        held = _adopt(stored, generation, changed)
        _remember(key, held)
    if held is not None and held.generation == _generation:
        age = _age(held.snapshot)
        if age < fresh:
            return _served(held.snapshot)
        if background and age < stale:
            _refresh_in_background(app, key, year, today, evidence_limit)
            return _served(held.snapshot)
    elif held is not None and background and held.snapshot.seconds >= inline and _age(held.snapshot) < stale:
        # The figures from before the last change, while the new ones are computed: at district
        # scale that takes seconds, too long to keep a coordinator waiting.
        _refresh_in_background(app, key, year, today, evidence_limit)
        return _served(held.snapshot, updating=True)
    return _served(_compute(app, key, year, today, evidence_limit))


def warm_up(app: Flask) -> None:
    """Compute this programme year's indicators in a thread as a web worker starts (called from
    gunicorn's post_worker_init), so the office's first page after a restart does not wait the
    seconds a district's year takes. Only with INDICATOR_WARM_UP=1, never in tests: in the district
    soak, four workers computing at once on a restart took 10 s of CPU from the scans and left each
    worker about 30 MB larger whether or not anyone opened the indicators. With the scheduler keeping
    `indicator_snapshots` fresh it is seldom worth it: a starting worker reads the stored report."""
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
                    key = (id(app), year, today, SHARED_EVIDENCE)
                    stored = _load(year, today, SHARED_EVIDENCE, newer_than=None)
                    if stored is None:
                        _compute(app, key, year, today, SHARED_EVIDENCE)
                    else:
                        _remember(key, _adopt(stored, _generation, _changed_at))
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - a cold cache only costs the first page its wait
            log.exception("indicator warm-up failed")

    threading.Thread(target=run, name="indicator-warm-up", daemon=True).start()
