"""Backups restored into a fresh database hold every volunteer, scan and message (SQLite and
PostgreSQL); a failed backup leaves no file; a restore never overwrites data unasked."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from extensions import db
from keys import data_cipher
from models import ScanRecord, Volunteer
from services.backup import backup, backup_file_name, nightly, prune, restore
from services.errors import DomainError
from services.imports import import_volunteers
from services.messaging import post_message
from services.outbox import Recipient
from tests.factories import roster_rows, xlsx_bytes

TABLES = ("volunteers", "scan_records", "messages", "message_recipients", "outbox")


def _fill(session) -> None:
    import_volunteers(session, xlsx_bytes(roster_rows(40, with_ids=True)), "r.xlsx", cipher=data_cipher())
    ids = session.scalars(select(Volunteer.id).order_by(Volunteer.id)).all()
    base = datetime(2027, 2, 5, 10, tzinfo=timezone.utc)
    session.execute(insert(ScanRecord), [
        {"volunteer_id": vid, "scanned_at": base + timedelta(minutes=i), "action": "refused", "code": "no_active_shift",
         "nonce": f"n-{i}", "lat": 31.0689, "lon": 121.5049, "response_json": '{"message": "不在班次时间内"}'}
        for i, vid in enumerate(ids)])
    session.commit()
    post_message(session, kind="notice", title="巡逻通知", body="今晚 18:00 集合", dedupe_key="notice-1",
                 recipients=[Recipient(volunteer_id=v) for v in ids])


def _rows(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))] for t in TABLES}


@pytest.fixture
def scratch_url(app):
    """A fresh, empty database of the same kind as the test database (dropped afterwards)."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "postgresql":
        path = Path(app.instance_path) / f"restore-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
        path.unlink(missing_ok=True)
        return
    name = f"{url.database}_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_backup_restored_into_a_fresh_database_has_every_volunteer_scan_and_message(app, session, runner,
                                                                                     scratch_url, tmp_path):
    _fill(session)
    expected = _rows(db.engine)
    assert len(expected["volunteers"]) == 40 and len(expected["scan_records"]) == 40
    assert len(expected["message_recipients"]) == 40 and len(expected["outbox"]) == 40

    out = tmp_path / "nightly" / "pingan.backup"
    result = runner.invoke(args=["backup", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and not list(out.parent.glob(".*partial"))

    restore(scratch_url, out)
    restored = create_engine(scratch_url)
    try:
        assert _rows(restored) == expected
        with restored.begin() as conn:  # sequences came along: the next insert gets a new id
            conn.execute(text("INSERT INTO messages (kind, title, body, created_at) "
                              "VALUES ('notice', 't', 'b', CURRENT_TIMESTAMP)"))
            assert conn.scalar(text("SELECT count(*) FROM messages")) == 2
        with pytest.raises(DomainError) as refused:  # never over existing data unasked
            restore(scratch_url, out)
        assert refused.value.code == "database_not_empty"
        restore(scratch_url, out, replace=True)
        assert _rows(restored) == expected
    finally:
        restored.dispose()


def test_a_failed_backup_leaves_no_file(app, tmp_path):
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "postgresql":
        bad = url.set(database="pingan_no_such_database_i13").render_as_string(hide_password=False)
    else:
        bad = f"sqlite:///{tmp_path / 'missing' / 'nothing.db'}"
    out = tmp_path / "b.backup"
    with pytest.raises(Exception):
        backup(bad, out)
    assert list(tmp_path.glob("*backup*")) == []


def test_restore_refuses_the_other_kind_of_backup(app, tmp_path):
    fake = tmp_path / "x.dump"
    fake.write_bytes(b"PGDMP" + b"\0" * 100)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if make_url(url).get_backend_name() == "postgresql":
        fake.write_bytes(b"SQLite format 3\0" + b"\0" * 100)
    with pytest.raises(DomainError) as exc:
        restore(url, fake)
    assert exc.value.code == "backup_mismatch"


def test_nightly_backup_keeps_the_newest(app, session, tmp_path):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    start = datetime(2027, 1, 1, 19, tzinfo=timezone.utc)
    for day in range(5):
        nightly(url, tmp_path, keep=3, now=start + timedelta(days=day))
    (tmp_path / "notes.txt").write_text("kept: not a backup")
    names = sorted(p.name for p in tmp_path.iterdir())
    ext = "dump" if make_url(url).get_backend_name() == "postgresql" else "sqlite3"
    assert names == ["notes.txt"] + [f"pingan-2027010{d}T190000Z.{ext}" for d in (3, 4, 5)]
    assert prune(tmp_path, 1) and len(list(tmp_path.glob("pingan-*"))) == 1
    assert backup_file_name(start, "sqlite") == "pingan-20270101T190000Z.sqlite3"


def test_the_scheduler_has_the_nightly_backup_only_with_a_backup_dir(app, tmp_path):
    from scheduler.runner import job_specs

    assert "nightly_backup" not in [j for j, _f, _t in job_specs(app)]
    app.config["BACKUP_DIR"] = str(tmp_path)
    try:
        specs = {j: t for j, _f, t in job_specs(app)}
        assert "nightly_backup" in specs and "hour='3'" in str(specs["nightly_backup"])
    finally:
        app.config["BACKUP_DIR"] = ""
