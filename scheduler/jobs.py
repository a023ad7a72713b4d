"""The functions APScheduler stores by reference ("scheduler.jobs:reminders"): each builds the app
once per process, runs one service inside an app context and records the run."""
from __future__ import annotations

from flask import Flask

from extensions import db
from services.checkin import ScanRules, close_forgotten
from services.clock import system_clock
from services.digest import send_digest
from services.jobs import dispatch_surveys, record_run, send_checkout_nudges, send_due_reminders
from services.privacy import clear_old_scan_locations

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
