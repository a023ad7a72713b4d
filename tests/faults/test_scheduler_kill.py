"""The active scheduler killed with SIGKILL across a reminder's due time: the standby takes over the
leader lock and the reminder goes out exactly once (and the one sent before the kill is not sent
again)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Assignment, Event, JobRun, Message, OutboxItem, PatrolPoint, Shift, Volunteer

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]


def _scheduler(app, log) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "INSTANCE_PATH": app.config["INSTANCE_PATH"], "SECRET_KEY": app.config["SECRET_KEY"],
           "DATA_KEY": app.config["DATA_KEY"], "SCHEDULER_TICK_SECONDS": "1", "SCHEDULER_STANDBY_SECONDS": "1",
           "REMINDER_LEAD_HOURS": "1", "LOG_LEVEL": "INFO"}
    return subprocess.Popen([sys.executable, "-m", "scheduler"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def _wait(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def _query(app, stmt):
    with app.app_context():
        try:
            return db.session.execute(stmt).all()
        finally:
            db.session.remove()


def test_a_killed_scheduler_is_replaced_and_each_reminder_goes_out_once(app, tmp_path):
    t0 = datetime.now(timezone.utc)
    with app.app_context():
        event = Event(name="元旦", starts_on=date(2026, 1, 1), ends_on=date(2030, 1, 1))
        point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=31.0689, lon=121.5049, radius_m=150)
        vols = [Volunteer(name=f"志愿者{i}", phone=f"1390000{i:04d}", joined_on=date(2026, 1, 1)) for i in range(3)]
        db.session.add_all([event, point, *vols])
        db.session.flush()
        # With a 1-hour lead, the first reminder falls due in 4 s, the second in 14 s.
        shifts = [Shift(event_id=event.id, point_id=point.id, capacity=5, starts_at=t0 + timedelta(hours=1, seconds=s),
                        ends_at=t0 + timedelta(hours=3)) for s in (4, 14)]
        db.session.add_all(shifts)
        db.session.flush()
        db.session.add_all([Assignment(shift_id=s.id, volunteer_id=v.id) for s in shifts for v in vols])
        db.session.commit()
        first_key, second_key = (f"reminder:{s.id}:1h" for s in shifts)
        db.session.remove()

    logs = [(tmp_path / "a.log").open("ab"), (tmp_path / "b.log").open("ab")]
    active = _scheduler(app, logs[0])
    time.sleep(0.5)
    standby = _scheduler(app, logs[1])
    try:
        _wait(lambda: _query(app, select(Message.id).where(Message.dedupe_key == first_key)))
        workers = {w for (w,) in _query(app, select(JobRun.worker).distinct())}
        assert workers == {f"{w.split(':')[0]}:{active.pid}" for w in workers}, workers  # only the leader runs jobs
        assert datetime.now(timezone.utc) < t0 + timedelta(seconds=12), "too slow to kill before the second is due"
        active.send_signal(signal.SIGKILL)  # no goodbye: the lock goes with the process
        active.wait(timeout=10)
        killed_at = datetime.now(timezone.utc)

        _wait(lambda: _query(app, select(Message.id).where(Message.dedupe_key == second_key)), timeout=40)
        assert killed_at < t0 + timedelta(seconds=14)  # the kill came before the second reminder's due time
        standby_runs = lambda: _query(app, select(func.count(JobRun.id)).where(  # noqa: E731
            JobRun.worker.like(f"%:{standby.pid}"), JobRun.job == "reminders", JobRun.outcome == "ok"))[0][0]
        runs = standby_runs()
        _wait(lambda: standby_runs() >= runs + 3)  # a few more reminder runs after it went out
    finally:
        for proc in (active, standby):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for log in logs:
            log.close()

    messages = _query(app, select(Message.dedupe_key, func.count(Message.id)).where(Message.kind == "reminder")
                      .group_by(Message.dedupe_key))
    assert dict(messages) == {first_key: 1, second_key: 1}
    per_message = _query(app, select(OutboxItem.message_id, func.count(OutboxItem.id)).group_by(OutboxItem.message_id))
    assert sorted(n for _, n in per_message) == [3, 3]  # one per volunteer, nothing doubled
