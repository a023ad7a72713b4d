"""Short write transactions that must serialise per volunteer."""
from __future__ import annotations

import contextvars
import fcntl
import os
import threading
from contextlib import contextmanager, nullcontext
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models.volunteer import Volunteer


class _SqliteWriterQueue:
    """One writer at a time across the processes and threads sharing a SQLite file, woken the
    moment the previous writer commits.

    Without it, two gunicorn workers scanning at once meet at `BEGIN IMMEDIATE`, and the loser
    waits in SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries however soon the
    lock is free. A blocking `flock` on a file beside the database queues the writers instead (the
    kernel wakes the next one at the unlock). Measured with wrk (docs/performance.md) the gain is
    within the noise of two shared cores; it is kept because a writer never sleeps past a free lock.
    The lock is taken per process *and* per thread: `flock` belongs to an open file, which the
    threads of one process share. A worker that hangs holding it is killed by gunicorn's timeout,
    and closing its file releases the lock.
    """

    def __init__(self) -> None:
        self._files: dict[str, tuple[int, int]] = {}   # path -> (pid, fd); a forked child reopens
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        self._depth: dict[str, int] = {}   # guarded by the path's RLock: only its holder touches it

    def _fd(self, path: str) -> int:
        pid = os.getpid()
        with self._guard:
            held = self._files.get(path)
            if held is None or held[0] != pid:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                self._files[path] = (pid, fd)
                return fd
            return held[1]

    def _thread_lock(self, path: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(path, threading.RLock())

    @contextmanager
    def hold(self, database: str | None) -> Iterator[None]:
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        path = os.path.abspath(database) + ".writers"
        lock = self._thread_lock(path)
        with lock:
            # Re-entered by the same thread (a write transaction inside another): the outer one
            # holds the file lock already and releases it.
            outer = self._depth.get(path, 0) == 0
            self._depth[path] = self._depth.get(path, 0) + 1
            fd = self._fd(path)
            if outer:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                self._depth[path] -= 1
                if outer:
                    fcntl.flock(fd, fcntl.LOCK_UN)


_WRITERS = _SqliteWriterQueue()
_BOOKKEEPING = contextvars.ContextVar("pingan_bookkeeping_commit", default=False)


@contextmanager
def bookkeeping() -> Iterator[None]:
    """Commits inside change no figure (a session's or a phone's "last seen", a stored copy of the
    indicators): caches of computed figures ask `is_bookkeeping_commit` and keep their result."""
    token = _BOOKKEEPING.set(True)
    try:
        yield
    finally:
        _BOOKKEEPING.reset(token)


def bookkeeping_commit(session: Session) -> None:
    with bookkeeping():
        session.commit()


def is_bookkeeping_commit() -> bool:
    return _BOOKKEEPING.get()


@contextmanager
def write_transaction(session: Session) -> Iterator[Connection]:
    """The session's connection, in a transaction that owns the write lock from its first statement.

    On SQLite the transaction starts with `BEGIN IMMEDIATE`: with a plain (deferred) BEGIN two
    workers both read, then both try to upgrade to a write lock and one fails at once with
    "database is locked" (the busy timeout does not apply to a lock upgrade). On PostgreSQL the
    caller locks the rows it serialises on (`lock_volunteer`). It reuses the request's connection
    (no second pool checkout and ping) and commits on success; whatever the session had pending is
    committed first, since the unit of work starts here.
    """
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite and conn.connection.driver_connection.in_transaction:
        session.commit()
        conn = session.connection()
    with _WRITERS.hold(conn.engine.url.database) if sqlite else nullcontext():
        if sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            session.rollback()
            raise
        session.commit()


def lock_volunteer(conn: Connection, volunteer_id: int):
    """Lock the volunteer's row (PostgreSQL) so concurrent scans of one person queue up instead of
    colliding on the one-open-attendance index; SQLite's IMMEDIATE transaction already serialises."""
    V = Volunteer.__table__
    stmt = select(V.c.id, V.c.status, V.c.name, V.c.withdrawn_on).where(V.c.id == volunteer_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()
