"""The year's indicators kept in the database (`indicator_snapshots`), so one computation serves
every process: the scheduler refreshes today's every few minutes, and a web worker that computes a
year (another year, or after the office changed something) leaves its result for the others.

Why a table and not each worker's memory alone: at district scale the year takes seconds, and a
cache per worker meant that the first indicator page after a restart, on each worker, computed it
while a coordinator waited.

The report travels as JSON with a few tags (dates, tuples, dictionaries keyed by numbers, phrases), which
the tests check comes back equal to what was computed: pickle would be shorter, but a row in a
table must not be able to run code when it is read.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy import case, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.indicator_snapshot import IndicatorMarks, IndicatorSnapshot
from services.clock import Clock, system_clock
from services.indicators import IndicatorReport, IndicatorRow, compute_indicators
from services.phrases import Phrase
from services.transactions import bookkeeping, write_transaction

KEEP_DAYS = 7   # a report computed for an older day is deleted when a newer one is stored
SHARED_EVIDENCE = 2000  # names of evidence kept: one computation serves every page (they show fewer)


@dataclass(frozen=True)
class Snapshot:
    report: IndicatorReport
    today: date              # the day it was computed for (the report of a past year is as of its end)
    started_at: datetime     # UTC; changes committed after it are not in the report
    computed_at: datetime    # UTC
    seconds: float           # how long the computation took


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"~map": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"~tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, datetime):
        return {"~datetime": value.isoformat()}
    if isinstance(value, date):
        return {"~date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"~decimal": str(value)}
    if isinstance(value, Phrase):   # before `str`: it is one, and keeps what an English page needs
        return {"~phrase": [value.msgid, _encode(value.params), str(value)]}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot keep {type(value).__name__} in an indicator snapshot")


_TAGS: dict[str, Callable[[Any], Any]] = {
    "~map": lambda items: {_decode(k): _decode(v) for k, v in items},
    "~tuple": lambda items: tuple(_decode(v) for v in items),
    "~datetime": datetime.fromisoformat,
    "~date": date.fromisoformat,
    "~decimal": Decimal,
    "~phrase": lambda item: Phrase(item[0], _decode(item[1]), item[2]),
}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key in _TAGS:
                return _TAGS[key](inner)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def report_to_json(report: IndicatorReport) -> str:
    data = {f.name: getattr(report, f.name) for f in fields(IndicatorReport)}
    data["rows"] = [{f.name: getattr(r, f.name) for f in fields(IndicatorRow)} for r in report.rows]
    return json.dumps(_encode(data), ensure_ascii=False, separators=(",", ":"))


def report_from_json(text: str) -> IndicatorReport:
    data = _decode(json.loads(text))
    data["rows"] = [IndicatorRow(**row) for row in data["rows"]]
    return IndicatorReport(**data)


@dataclass(frozen=True)
class Marks:
    """What makes a stored report stale (`indicator_marks`): a report started at or before
    `changed_at` lacks the office's last change; one started at or before `forgotten_at` may name a
    person whose data was erased, and is neither shown nor stored."""
    changed_at: datetime | None = None
    forgotten_at: datetime | None = None


def read_marks(session: Session) -> Marks:
    row = session.execute(select(IndicatorMarks.changed_at, IndicatorMarks.forgotten_at)
                          .where(IndicatorMarks.id == 1)).first()
    return Marks(row.changed_at, row.forgotten_at) if row is not None else Marks()


def _insert(conn):
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _set_mark(conn, **values: datetime) -> None:
    """One upsert (two processes may write the first mark at once); a mark only moves forward."""
    M = IndicatorMarks.__table__
    upsert = _insert(conn)(M).values(id=1, **values)
    later = {name: case((or_(M.c[name].is_(None), M.c[name] < upsert.excluded[name]), upsert.excluded[name]),
                        else_=M.c[name]) for name in values}
    conn.execute(upsert.on_conflict_do_update(index_elements=[M.c.id], set_=later))


def mark_changed(session: Session, at: datetime) -> None:
    """The office changed something (web/indicator_cache.py, at the end of its request): every
    web worker now treats reports started before `at` as "updating". Its own transaction."""
    with bookkeeping(), write_transaction(session) as conn:
        _set_mark(conn, changed_at=at)


def load_snapshot(session: Session, year: int, today: date, evidence_limit: int, *,
                  newer_than: datetime | None = None) -> Snapshot | None:
    """The stored report, or None; also None when it was started at or before `newer_than` (what
    the caller holds already, or a mark), without reading the report itself."""
    S = IndicatorSnapshot
    head = session.execute(select(S.id, S.started_at, S.computed_at, S.seconds).where(
        S.year == year, S.asked_on == today, S.evidence_limit == evidence_limit)).first()
    if head is None or (newer_than is not None and head.started_at <= newer_than):
        return None
    payload = session.scalar(select(S.payload).where(S.id == head.id, S.started_at == head.started_at))
    if payload is None:   # replaced in between: the caller uses what it holds, or computes
        return None
    return Snapshot(report_from_json(payload), today, head.started_at, head.computed_at, head.seconds)


def save_snapshot(session: Session, snapshot: Snapshot, *, evidence_limit: int) -> bool:
    """Store the report for its year, day and evidence limit, unless the one stored was started
    later (two processes computed at once: the later start saw more) or an erasure came after
    this one started (it may name the person). Also drops reports for days more than KEEP_DAYS
    back and any started before the last erasure. One upsert, so concurrent saves on PostgreSQL
    neither collide on the key nor go backwards. Committed as bookkeeping: storing figures is not a
    change to them. `session` should be one of its own: the write commits whatever it holds."""
    report = snapshot.report
    S = IndicatorSnapshot.__table__
    with bookkeeping(), write_transaction(session) as conn:
        forgotten = read_marks(session).forgotten_at
        if forgotten is not None:
            conn.execute(delete(S).where(S.c.started_at <= forgotten))
            if snapshot.started_at <= forgotten:
                return False
        conn.execute(delete(S).where(S.c.asked_on < snapshot.today - timedelta(days=KEEP_DAYS)))
        values = {"year": report.year, "asked_on": snapshot.today, "evidence_limit": evidence_limit,
                  "started_at": snapshot.started_at, "computed_at": snapshot.computed_at,
                  "seconds": snapshot.seconds, "payload": report_to_json(report)}
        upsert = _insert(conn)(S).values(**values)
        changed = {k: upsert.excluded[k] for k in ("started_at", "computed_at", "seconds", "payload")}
        stored = conn.execute(upsert.on_conflict_do_update(
            index_elements=[S.c.year, S.c.asked_on, S.c.evidence_limit], set_=changed,
            where=S.c.started_at <= upsert.excluded.started_at).returning(S.c.id)).first()
    return stored is not None


def compute_snapshot(session: Session, year: int, *, today: date, evidence_limit: int,
                     clock: Clock = system_clock) -> Snapshot:
    started, tick = clock(), time.perf_counter()
    report = compute_indicators(session, year, today=today, evidence_limit=evidence_limit)
    return Snapshot(report, today, started, clock(), round(time.perf_counter() - tick, 3))


def forget_snapshots(session: Session, *, at: datetime) -> int:
    """After an erasure (the caller's transaction): delete every stored report, since they name
    volunteers in their evidence, and mark the time, so that a computation already running
    elsewhere is neither shown nor stored afterwards. The next page or the scheduler computes afresh."""
    _set_mark(session.connection(), forgotten_at=at)
    return session.execute(delete(IndicatorSnapshot)).rowcount or 0


def store_today(session: Session, *, today: date, clock: Clock = system_clock) -> Snapshot:
    """Compute the programme year of `today` and store it: the scheduler's job."""
    from services.programme_year import programme_year_of

    snapshot = compute_snapshot(session, programme_year_of(session, today), today=today,
                                evidence_limit=SHARED_EVIDENCE, clock=clock)
    save_snapshot(session, snapshot, evidence_limit=SHARED_EVIDENCE)
    return snapshot
