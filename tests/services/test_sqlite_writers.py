"""SQLite write transactions queue on a lock file (services/transactions.py): threads and
processes take turns without "database is locked", and a nested one does not deadlock."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from services.transactions import write_transaction


@pytest.fixture
def engine(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'w.db'}", connect_args={"timeout": 0.05})
    with eng.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE n (v INTEGER)"))
    yield eng
    eng.dispose()


def test_writers_in_many_threads_take_turns_even_with_a_tiny_busy_timeout(engine, tmp_path):
    """With a 50 ms busy timeout, 8 threads × 25 slow-ish writes would fail with "database is
    locked" if they met at BEGIN IMMEDIATE; queued on the lock file, every one goes through."""
    errors: list[Exception] = []

    def work() -> None:
        with Session(engine) as session:
            for _ in range(25):
                try:
                    with write_transaction(session) as conn:
                        value = conn.execute(text("SELECT count(*) FROM n")).scalar()
                        threading.Event().wait(0.002)
                        conn.execute(text("INSERT INTO n (v) VALUES (:v)"), {"v": value})
                except Exception as exc:  # noqa: BLE001 - collected for the assertion
                    errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM n")).scalar() == 200
        # each write saw every earlier one: the read-then-write sections never overlapped
        assert conn.execute(text("SELECT count(DISTINCT v) FROM n")).scalar() == 200
    assert (tmp_path / "w.db.writers").exists()


def test_a_write_transaction_inside_another_in_the_same_thread_does_not_deadlock(engine):
    done = threading.Event()

    def nested() -> None:
        with Session(engine) as outer:
            with write_transaction(outer) as conn:
                conn.execute(text("INSERT INTO n (v) VALUES (1)"))
        with Session(engine) as a, Session(engine) as b:
            with write_transaction(a):
                try:  # SQLite itself refuses the second writer (busy timeout), but it must return
                    with write_transaction(b):
                        pass
                except Exception:  # noqa: BLE001 - "database is locked" is the expected answer
                    pass
        done.set()

    t = threading.Thread(target=nested, daemon=True)
    t.start()
    t.join(timeout=10)
    assert done.is_set()
