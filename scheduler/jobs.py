"""The functions APScheduler stores by reference ("scheduler.jobs:reminders"): each builds the app
once per process, runs one service inside an app context and records the run."""
from __future__ import annotations

import logging
import os
import threading

from flask import Flask

from extensions import db
from services.checkin import ScanRules, close_forgotten
from services.clock import system_clock
from services.digest import send_digest
from services.jobs import dispatch_surveys, record_run, send_checkout_nudges, send_due_reminders
from services.privacy import clear_old_scan_locations

log = logging.getLogger(__name__)
_APP: Flask | None = None


def use_app(app: Flask) -> None:
    global _APP
    _APP = app


def _app() -> Flask:
    global _APP
    if _APP is None:
        from app import create_app
        _APP = create_app()
    return _APP


def _run(name: str, fn) -> None:
    app = _app()
    with app.app_context():
        clock = app.config.get("CLOCK") or system_clock
        try:
            with record_run(db.session, name, clock=clock) as info:
                info["result"] = fn(app, clock)
        finally:
            db.session.remove()


def reminders() -> None:
    leads = tuple(float(x) for x in str(_app().config["REMINDER_LEAD_HOURS"]).split(",") if x.strip())
    _run("reminders", lambda app, clock: send_due_reminders(db.session, clock(), leads_hours=leads).queued)


def checkout_nudges() -> None:
    _run("checkout_nudges", lambda app, clock: send_checkout_nudges(db.session, clock()))


def auto_close() -> None:
    _run("auto_close", lambda app, clock: len(close_forgotten(db.session, rules=ScanRules.from_config(app.config),
                                                              clock=clock)))


def surveys() -> None:
    _run("surveys", lambda app, clock: dispatch_surveys(db.session, clock()))


def weekly_digest() -> None:
    _run("weekly_digest", lambda app, clock: bool(send_digest(db.session, clock=clock)))


def indicator_snapshot() -> None:
    """Today's indicators stored for every web worker (services/indicator_snapshots.py): a worker
    that has just started reads them instead of computing the year while the office waits.

    Computed by a short-lived child process (`flask indicators --store`), not in the scheduler: at
    district scale the year's computation allocates tens of megabytes of short-lived objects, and a
    long-running process keeps much of that memory after each run (measured: the scheduler grew by
    6, 7, 4, 2… MB over its first runs, 36 % over the 10-minute soak). The child starts in about a
    second and gives all of it back when it exits."""
    import json
    import subprocess  # nosec B404 - our own CLI, no shell, fixed arguments
    import sys
    from pathlib import Path

    from services.clock import local_date, local_zone

    def _store(app, clock) -> dict:
        today = local_date(clock(), local_zone(app.config["TIMEZONE"]))
        # The same database and instance (keys) as this process, whatever its environment said.
        env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], INSTANCE_PATH=app.instance_path)
        done = subprocess.run(  # nosec B603 - sys.executable and our own command
            [sys.executable, "-m", "flask", "--app", "app", "indicators", "--store", "--today", today.isoformat()],
            cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
            timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"flask indicators --store failed ({done.returncode}): {done.stderr[-800:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    _run("indicator_snapshot", _store)


def scan_retention() -> None:
    _run("scan_retention", lambda app, clock: clear_old_scan_locations(
        db.session, now=clock(), retention_days=int(app.config["SCAN_LOCATION_RETENTION_DAYS"])))


def nightly_backup() -> None:
    """A time-stamped backup in BACKUP_DIR, then all but the BACKUP_KEEP newest are deleted."""
    from pathlib import Path

    from services.backup import nightly

    def _backup(app, clock) -> str:
        result = nightly(app.config["SQLALCHEMY_DATABASE_URI"], Path(app.config["BACKUP_DIR"]),
                         keep=int(app.config["BACKUP_KEEP"]), now=clock())
        return f"{result.path.name} {result.size}"

    _run("nightly_backup", _backup)


def export_cleanup() -> None:
    """Delete background exports' files older than EXPORT_RETENTION_DAYS (and orphaned ones)."""
    from services.export_jobs import expire_old_exports, export_dir

    _run("export_cleanup", lambda app, clock: expire_old_exports(
        db.session, directory=export_dir(app.config["INSTANCE_PATH"]), now=clock(),
        retention_days=int(app.config["EXPORT_RETENTION_DAYS"])))


def export_worker(app: Flask, stop: threading.Event) -> None:
    """Build queued exports one after another until `stop` is set; look again every
    EXPORT_POLL_SECONDS when the queue is empty. A failure is recorded on the job (and logged);
    the loop itself keeps going (a database restart must not end it)."""
    from datetime import timedelta

    from keys import data_cipher
    from services.clock import local_zone
    from services.export_jobs import export_dir, requeue_stale, run_next, worker_name

    worker = worker_name()
    poll = float(app.config["EXPORT_POLL_SECONDS"])
    directory = export_dir(app.config["INSTANCE_PATH"])
    zone = local_zone(app.config["TIMEZONE"])
    # This process has just become the one active scheduler: a job still "running" was left by the
    # one before (killed, or the machine restarted), so it is queued again now rather than after
    # STALE_AFTER. Should that process still be alive after all, its next write finds the job
    # claimed by someone else and it stops (services/export_jobs.py).
    try:
        with app.app_context():
            try:
                taken_over = requeue_stale(db.session, clock=app.config.get("CLOCK") or system_clock,
                                           stale_after=timedelta(0))
            finally:
                db.session.remove()
        if taken_over:
            log.info("export worker: %d export(s) left running by the previous scheduler queued again", taken_over)
    except Exception:
        log.exception("export worker: could not re-queue the previous scheduler's exports")
    while not stop.is_set():
        outcome = None
        try:
            with app.app_context():
                clock = app.config.get("CLOCK") or system_clock
                try:
                    outcome = run_next(db.session, worker=worker, directory=directory,
                                       today=clock().astimezone(zone).date(), cipher=data_cipher(), clock=clock,
                                       should_stop=stop.is_set)
                finally:
                    db.session.remove()
        except Exception:
            log.exception("export worker: could not look for queued exports")
        if outcome is None:
            stop.wait(poll)
