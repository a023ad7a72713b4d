"""Run the scheduler: exactly one active instance, a persistent job store, Shanghai time.

One instance is active even if several are started: on PostgreSQL the active one holds an
advisory lock for its lifetime (the others stand by and take over when its connection closes); on
SQLite, which lives on one machine, an exclusive `flock` on `instance/scheduler.lock` does the
same. The active instance also runs the export worker (`jobs.export_worker`: large exports built in
the background, services/export_jobs.py). Jobs live in the service database (`apscheduler_jobs`, created by a migration); misfired runs
are coalesced into one run after a restart, within `misfire_grace_time`.
"""
from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from extensions import db

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 72_031_002  # "平安马甲 scheduler"


def digest_trigger(zone: str) -> CronTrigger:
    """Every Monday 09:00 in the programme's time zone (not UTC)."""
    return CronTrigger(day_of_week="mon", hour=9, minute=0, timezone=ZoneInfo(zone))


def job_specs(app: Flask) -> list[tuple[str, str, object]]:
    tick = int(app.config["SCHEDULER_TICK_SECONDS"])
    zone = app.config["TIMEZONE"]
    snapshot = int(app.config.get("INDICATOR_SNAPSHOT_SECONDS") or 0)
    return [
        ("reminders", "scheduler.jobs:reminders", IntervalTrigger(seconds=tick)),
        ("checkout_nudges", "scheduler.jobs:checkout_nudges", IntervalTrigger(seconds=tick)),
        ("auto_close", "scheduler.jobs:auto_close", IntervalTrigger(seconds=tick)),
        ("surveys", "scheduler.jobs:surveys", IntervalTrigger(seconds=max(tick, 60) if tick >= 60 else tick)),
        ("weekly_digest", "scheduler.jobs:weekly_digest", digest_trigger(zone)),
        # PIPL retention: once a day, at night.
        ("scan_retention", "scheduler.jobs:scan_retention", CronTrigger(hour=3, minute=30, timezone=ZoneInfo(zone))),
        # Background exports' files are deleted after EXPORT_RETENTION_DAYS.
        ("export_cleanup", "scheduler.jobs:export_cleanup", CronTrigger(hour=4, minute=15, timezone=ZoneInfo(zone))),
    ] + ([("nightly_backup", "scheduler.jobs:nightly_backup",
           CronTrigger(hour=int(app.config["BACKUP_HOUR"]), minute=0, timezone=ZoneInfo(zone)))]
         if app.config.get("BACKUP_DIR") else []) + (
        # Today's indicators for every web worker (web/indicator_cache.py), also as the scheduler starts.
        [("indicator_snapshot", "scheduler.jobs:indicator_snapshot", IntervalTrigger(seconds=snapshot))]
        if snapshot > 0 else [])


OPTIONAL_JOBS = ("nightly_backup", "indicator_snapshot")
START_AT_ONCE = ("indicator_snapshot",)   # a web worker restarted with the scheduler finds them soon


class Leadership:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._conn = None
        self._file = None

    def try_acquire(self) -> bool:
        with self.app.app_context():
            engine = db.engine
            if engine.dialect.name == "postgresql":
                conn = engine.connect()
                if conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({ADVISORY_LOCK_KEY})").scalar():
                    conn.commit()
                    self._conn = conn
                    return True
                conn.close()
                return False
        path = Path(self.app.config["INSTANCE_PATH"]) / "scheduler.lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._file is not None:
            self._file.close()


def build_scheduler(app: Flask) -> BackgroundScheduler:
    with app.app_context():
        engine = db.engine
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")},
        timezone=ZoneInfo(app.config["TIMEZONE"]),
        job_defaults={"coalesce": True, "misfire_grace_time": int(app.config["SCHEDULER_MISFIRE_GRACE_SECONDS"]),
                      "max_instances": 1})


def sync_jobs(scheduler: BackgroundScheduler, app: Flask) -> None:
    """Add missing jobs; keep stored ones (and their pending misfires) unless their trigger changed;
    drop an optional job switched off since (BACKUP_DIR unset)."""
    specs = job_specs(app)
    wanted = {job_id for job_id, _f, _t in specs}
    for job_id in OPTIONAL_JOBS:
        if job_id not in wanted and scheduler.get_job(job_id) is not None:
            scheduler.remove_job(job_id)
    for job_id, func, trigger in specs:
        existing = scheduler.get_job(job_id)
        if existing is None:
            scheduler.add_job(func, trigger, id=job_id, name=job_id)
        elif str(existing.trigger) != str(trigger) or existing.func_ref != func:
            scheduler.modify_job(job_id, func=func)
            scheduler.reschedule_job(job_id, trigger=trigger)


def run_soon(scheduler: BackgroundScheduler, app: Flask) -> None:
    """The jobs in START_AT_ONCE run as this scheduler becomes the active one, not an interval later."""
    for job_id in START_AT_ONCE:
        if scheduler.get_job(job_id) is not None:
            scheduler.modify_job(job_id, next_run_time=datetime.now(ZoneInfo(app.config["TIMEZONE"])))


def run(app: Flask, *, stop: threading.Event | None = None) -> None:
    from scheduler import jobs
    jobs.use_app(app)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_a: stop.set())
    lead = Leadership(app)
    while not stop.is_set() and not lead.try_acquire():
        log.info("another scheduler is active; standing by")
        stop.wait(float(app.config["SCHEDULER_STANDBY_SECONDS"]))
    if stop.is_set():
        return
    scheduler = build_scheduler(app)
    scheduler.start(paused=True)
    sync_jobs(scheduler, app)
    run_soon(scheduler, app)
    scheduler.resume()
    # Large exports are built here, one at a time, by a loop of their own: a build can take
    # minutes and must not wait for (or hold up) the interval jobs. The stop event ends the loop,
    # and a build in progress goes back to the queue at its next progress write.
    exports = threading.Thread(target=jobs.export_worker, args=(app, stop), name="export-worker", daemon=True)
    exports.start()
    log.info("scheduler %s active", os.getpid())
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
        exports.join(timeout=30)
        lead.release()
