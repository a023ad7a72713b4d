"""Short write transactions that must serialise per volunteer."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models.volunteer import Volunteer


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
    if conn.dialect.name == "sqlite":
        if conn.connection.driver_connection.in_transaction:
            session.commit()
            conn = session.connection()
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
