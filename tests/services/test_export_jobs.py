"""Background exports (services/export_jobs.py): queue → claim → progress → done, a second click,
a killed worker's job re-queued, failures recorded, a shutdown handing the job back, and the
retention cleanup. Run on PostgreSQL too (TEST_DATABASE_URL): the claim is dialect-specific."""
from __future__ import annotations

import io
import os
import time
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from extensions import db
from models import ExportJob, PersonalDataExport, User
from services import export_jobs
from services.clock import fixed_clock
from services.errors import DomainError
from services.export_jobs import (JobLost, _write_own, claim_next, count_rows, expire_old_exports, queue_export,
                                  requeue_stale, run_claimed, run_next)
from services.users import create_user
from tests.conftest import utc
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)

NOW = utc(2026, 1, 10, 2)
TODAY = date(2026, 1, 10)


@pytest.fixture
def user(session):
    return create_user(session, "exporter", "password-123", "coordinator")


@pytest.fixture
def directory(tmp_path):
    return tmp_path


def _queue(session, user, kind="attendance", fmt="xlsx", **params):
    params = params or {"year": Y}
    return queue_export(session, user_id=user.id, kind=kind, params=params, fmt=fmt,
                        rows_total=count_rows(session, kind, params, today=TODAY), clock=fixed_clock(NOW))


def _job(session, job_id) -> ExportJob:
    session.expire_all()
    return session.get(ExportJob, job_id)


def test_queue_claim_progress_done(session, programme, user, directory):  # noqa: F811
    job, created = _queue(session, user)
    assert created and job.status == "queued" and job.rows_total == 7 and job.params == f'{{"year":{Y}}}'
    claimed = claim_next(session, worker="w1", clock=fixed_clock(NOW))
    assert claimed.id == job.id and claimed.params == {"year": Y}
    assert claim_next(session, worker="w2", clock=fixed_clock(NOW)) is None  # nobody else gets it
    assert _job(session, job.id).status == "running" and _job(session, job.id).attempts == 1
    seen = []

    def watch():  # called before each progress write: what the page would show now
        with db.engine.connect() as conn:
            seen.append(conn.execute(select(ExportJob.rows_done).where(ExportJob.id == job.id)).scalar())
        return False

    assert run_claimed(session, claimed, directory=directory, today=TODAY, progress_every=2, should_stop=watch) == "done"
    assert seen == [0, 2, 4]   # rows 2, 4, 6 reached; each call sees the previous write
    done = _job(session, job.id)
    assert done.status == "done" and done.rows_done == 7 and done.finished_at is not None and done.claimed_by is None
    path = directory / done.file_name
    assert done.file_size == path.stat().st_size and not list(directory.glob("*.part"))
    wb = load_workbook(io.BytesIO(path.read_bytes()))
    assert len(list(wb["签到记录"].iter_rows())) == 7 and "人工调整" in wb.sheetnames


def test_a_second_click_returns_the_same_job_until_it_is_finished(session, programme, user, directory):  # noqa: F811
    first, created = _queue(session, user)
    again, created_again = _queue(session, user)
    assert created and not created_again and again.id == first.id
    other_format, created = _queue(session, user, fmt="csv")
    assert created and other_format.id != first.id
    # the partial unique index holds even without the look-up first (two clicks racing)
    db.session.add(ExportJob(user_id=user.id, kind="attendance", params=first.params, format="xlsx", locale="zh",
                             status="queued", rows_done=0, rows_total=0, attempts=0, created_at=NOW))
    with pytest.raises(Exception):
        db.session.commit()
    db.session.rollback()
    while run_next(session, worker="w", directory=directory, today=TODAY) is not None:
        pass
    later, created = _queue(session, user)
    assert created and later.id not in (first.id, other_format.id)


def test_at_most_five_unfinished_exports_per_user(session, programme, user):  # noqa: F811
    for year in range(Y - 4, Y + 1):
        _queue(session, user, year=year)
    with pytest.raises(DomainError) as err:
        _queue(session, user, year=Y + 1)
    assert err.value.code == "too_many_exports"


def test_a_killed_workers_job_is_queued_again_and_the_old_worker_cannot_touch_it(session, programme, user,  # noqa: F811
                                                                                directory):
    job, _c = _queue(session, user)
    dead = claim_next(session, worker="dead", clock=fixed_clock(NOW))
    assert requeue_stale(session, clock=fixed_clock(NOW + timedelta(minutes=5))) == 0  # still fresh
    later = fixed_clock(NOW + export_jobs.STALE_AFTER + timedelta(seconds=1))
    assert run_next(session, worker="alive", directory=directory, today=TODAY, clock=later) == "done"
    done = _job(session, job.id)
    assert done.status == "done" and done.attempts == 2
    with pytest.raises(JobLost):
        _write_own(session, dead, rows_done=1)
    # the presumed-dead worker finishing late neither overwrites the job nor leaves a file behind
    files = set(os.listdir(directory))
    assert run_claimed(session, dead, directory=directory, today=TODAY) == "lost"
    assert set(os.listdir(directory)) == files and _job(session, job.id).file_name == done.file_name


def test_a_job_that_keeps_losing_its_worker_fails(session, programme, user):  # noqa: F811
    job, _c = _queue(session, user)
    t = NOW
    for _attempt in range(export_jobs.MAX_ATTEMPTS):
        assert claim_next(session, worker="w", clock=fixed_clock(t)) is not None
        t += export_jobs.STALE_AFTER + timedelta(seconds=1)
        requeue_stale(session, clock=fixed_clock(t))
    failed = _job(session, job.id)
    assert failed.status == "failed" and failed.error_code == "worker_lost"


def test_failures_are_recorded_with_their_code(session, programme, user, directory, monkeypatch):  # noqa: F811
    job, _c = _queue(session, user)

    def refuse(*_a, **_k):
        raise DomainError("bad_year", "no")

    monkeypatch.setattr(export_jobs, "build_tables", refuse)
    assert run_next(session, worker="w", directory=directory, today=TODAY) == "failed"
    assert _job(session, job.id).error_code == "bad_year"

    job2, _c = _queue(session, user, fmt="csv")
    monkeypatch.setattr(export_jobs, "build_tables", lambda *_a, **_k: 1 / 0)
    assert run_next(session, worker="w", directory=directory, today=TODAY) == "failed"
    failed = _job(session, job2.id)
    assert failed.status == "failed" and failed.error_code == "internal_error" and failed.finished_at is not None
    assert not list(directory.iterdir())


def test_a_worker_shutting_down_hands_the_job_back(session, programme, user, directory):  # noqa: F811
    job, _c = _queue(session, user)
    assert run_next(session, worker="w", directory=directory, today=TODAY, progress_every=1,
                    should_stop=lambda: True) == "queued"
    back = _job(session, job.id)
    assert back.status == "queued" and back.attempts == 0 and back.claimed_by is None
    assert not list(directory.iterdir())


def test_the_file_is_in_the_requesters_language(app, session, programme, user, directory):  # noqa: F811
    job, _c = queue_export(session, user_id=user.id, kind="hours", params={"year": Y}, fmt="csv", rows_total=4,
                           locale="en")
    assert run_next(session, worker="w", directory=directory, today=TODAY) == "done"
    text = (directory / _job(session, job.id).file_name).read_bytes().decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Name,")


def test_a_background_roster_with_id_numbers_is_in_the_personal_data_log(session, programme, directory, cipher):  # noqa: F811
    admin = create_user(session, "boss", "password-123", "admin")
    _queue(session, admin, kind="roster", with_id_numbers=True)
    assert run_next(session, worker="w", directory=directory, today=TODAY, cipher=cipher) == "done"
    logged = session.scalars(select(PersonalDataExport)).all()
    assert [(p.what, p.record_count, p.actor) for p in logged] == [("roster_with_id_numbers", 5, f"user:{admin.id}:boss")]


def test_cleanup_deletes_old_files_and_orphans(session, programme, user, directory):  # noqa: F811
    old, _c = _queue(session, user)
    assert run_next(session, worker="w", directory=directory, today=TODAY) == "done"
    recent, _c = _queue(session, user, fmt="csv")
    assert run_next(session, worker="w", directory=directory, today=TODAY) == "done"
    old_file, recent_file = _job(session, old.id).file_name, _job(session, recent.id).file_name
    now = utc(*time.gmtime()[:6])  # file times are real ones
    session.execute(update(ExportJob).where(ExportJob.id == old.id).values(finished_at=now - timedelta(days=8)))
    session.execute(update(ExportJob).where(ExportJob.id == recent.id).values(finished_at=now - timedelta(days=1)))
    session.commit()
    orphan, fresh_part = directory / "orphan.xlsx.part", directory / "running.xlsx.part"
    orphan.write_bytes(b"x")
    fresh_part.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(orphan, (two_days_ago, two_days_ago))
    assert expire_old_exports(session, directory=directory, now=now, retention_days=7) == 2
    assert not (directory / old_file).exists() and (directory / recent_file).exists()
    assert not orphan.exists() and fresh_part.exists()  # a running job's file is young
    expired = _job(session, old.id)
    assert expired.status == "expired" and expired.file_name is None
    assert _job(session, recent.id).status == "done"


def test_the_scheduler_runs_the_cleanup(app):
    from scheduler.runner import job_specs

    assert "export_cleanup" in [name for name, _ref, _t in job_specs(app)]


def test_users_are_not_confused(session, programme, user):  # noqa: F811
    other = create_user(session, "other", "password-123", "coordinator")
    mine, _c = _queue(session, user)
    theirs, created = _queue(session, other)
    assert created and theirs.id != mine.id
    assert session.get(User, other.id) is not None


def test_concurrent_workers_never_claim_one_job_twice(app, session, user):
    """Four workers (threads with their own connections) race for six jobs: each job is claimed
    exactly once (BEGIN IMMEDIATE on SQLite, FOR UPDATE SKIP LOCKED on PostgreSQL)."""
    import threading

    for year in range(Y - 5, Y + 1):
        db.session.add(ExportJob(user_id=user.id, kind="expenditures", params=f'{{"year":{year}}}', format="csv",
                                 locale="zh", status="queued", rows_done=0, rows_total=0, attempts=0, created_at=NOW))
    db.session.commit()
    got: list[int] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with app.app_context():
                while (claimed := claim_next(db.session, worker=name)) is not None:
                    got.append(claimed.id)
                db.session.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and sorted(got) == sorted(set(got)) and len(got) == 6


def test_the_scheduler_process_builds_queued_exports(app, session, programme, user):  # noqa: F811
    """The export worker loop the active scheduler runs: a job the scheduler before left running
    (fresh progress, but that process is gone) is queued again at once; it builds what is queued
    and stops when told."""
    import threading

    from scheduler import jobs

    job, _c = _queue(session, user)
    left, _c = _queue(session, user, fmt="csv")
    assert claim_next(session, worker="the-scheduler-before", clock=fixed_clock(utc(*time.gmtime()[:6]))).id == job.id
    stop = threading.Event()
    before = app.config["EXPORT_POLL_SECONDS"]
    app.config["EXPORT_POLL_SECONDS"] = 0.05
    loop = threading.Thread(target=jobs.export_worker, args=(app, stop))
    loop.start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline and {_job(session, job.id).status, _job(session, left.id).status} != {"done"}:
            time.sleep(0.1)
    finally:
        stop.set()
        loop.join(10)
        app.config["EXPORT_POLL_SECONDS"] = before
    done = _job(session, job.id)
    assert done.status == "done" and done.attempts == 2 and _job(session, left.id).status == "done"
    assert not loop.is_alive()
    path = export_jobs.export_dir(app.config["INSTANCE_PATH"]) / done.file_name
    assert path.is_file() and (path.stat().st_mode & 0o077) == 0  # the service's user only
