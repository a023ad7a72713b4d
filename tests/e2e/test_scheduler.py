"""Two schedulers against one database: only one runs jobs (the lock, not only deduplication),
and the other takes over when the first stops."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from extensions import db
from models import JobRun

ROOT = Path(__file__).resolve().parents[2]


def _start(app, log: Path) -> tuple[subprocess.Popen, object]:
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "INSTANCE_PATH": app.config["INSTANCE_PATH"], "SECRET_KEY": app.config["SECRET_KEY"],
           "DATA_KEY": app.config["DATA_KEY"], "SCHEDULER_TICK_SECONDS": "1", "SCHEDULER_STANDBY_SECONDS": "1",
           "LOG_LEVEL": "INFO"}
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "scheduler"], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT), out


def _workers(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(select(JobRun.worker, func.count(JobRun.id)).group_by(JobRun.worker)).all()
        db.session.remove()
    return {w: n for w, n in rows}


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_only_one_of_two_schedulers_runs_jobs_and_the_other_takes_over(app, tmp_path):
    first, out1 = _start(app, tmp_path / "s1.log")
    time.sleep(0.5)
    second, out2 = _start(app, tmp_path / "s2.log")
    try:
        _wait(lambda: sum(_workers(app).values()) >= 12)
        workers = _workers(app)
        assert len(workers) == 1, workers
        (active,) = workers
        pids = {first.pid: first, second.pid: second}
        active_pid = int(active.rsplit(":", 1)[1])
        assert active_pid in pids
        standby = second if active_pid == first.pid else first
        pids[active_pid].send_signal(signal.SIGTERM)
        pids[active_pid].wait(timeout=20)
        took_over = _wait(lambda: any(w.endswith(f":{standby.pid}") for w in _workers(app)))
        assert took_over
        with app.app_context():
            assert db.session.scalar(select(func.count(JobRun.id)).where(JobRun.outcome == "error")) == 0
            db.session.remove()
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        out1.close()
        out2.close()
