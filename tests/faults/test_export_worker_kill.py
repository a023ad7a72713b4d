"""The active scheduler killed with SIGKILL in the middle of a background export: the standby takes
over, queues the job again at once and builds it; the job ends done once, with one complete file."""
from __future__ import annotations

import signal
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select

from extensions import db
from models import Attendance, ExportJob, Volunteer
from services.export_jobs import count_rows, export_dir, queue_export
from services.users import create_user
from tests.faults.test_scheduler_kill import _query, _scheduler, _wait

pytestmark = pytest.mark.faults
YEAR = 2025
VOLUNTEERS, PATROLS = 4000, 10   # 40,000 rows: long enough to be killed half-way


def test_a_killed_export_is_finished_by_the_standby(app, tmp_path):
    with app.app_context():
        db.session.execute(insert(Volunteer), [{"id": i, "name": f"压测{i}", "phone": f"1{i:010d}", "status": "active",
                                                "card_version": 1, "joined_on": date(YEAR, 1, 1)}
                                               for i in range(1, VOLUNTEERS + 1)])
        start = datetime(YEAR, 3, 1, 10, tzinfo=timezone.utc)
        db.session.execute(insert(Attendance), [
            {"volunteer_id": v, "source": "scan", "status": "closed", "check_in_at": start + timedelta(days=k),
             "check_out_at": start + timedelta(days=k, hours=2), "credited_minutes": 120,
             "work_date": (start + timedelta(days=k)).date(), "review_status": "none", "flags": "", "walk_in": False}
            for v in range(1, VOLUNTEERS + 1) for k in range(PATROLS)])
        user = create_user(db.session, "exporter", "password-123", "coordinator")
        params = {"year": YEAR}
        job, _c = queue_export(db.session, user_id=user.id, kind="attendance", params=params, fmt="xlsx",
                               rows_total=count_rows(db.session, "attendance", params, today=date(YEAR + 1, 1, 10)))
        job_id = job.id
        db.session.remove()

    logs = [(tmp_path / "a.log").open("ab"), (tmp_path / "b.log").open("ab")]
    active = _scheduler(app, logs[0])
    standby = None
    try:
        # running, with progress written (rows_done > 0), and not finished yet
        _wait(lambda: _query(app, select(ExportJob.id).where(ExportJob.id == job_id, ExportJob.status == "running",
                                                             ExportJob.rows_done > 0)), timeout=60)
        standby = _scheduler(app, logs[1])
        time.sleep(0.5)
        active.send_signal(signal.SIGKILL)
        active.wait(timeout=10)
        assert _query(app, select(ExportJob.status).where(ExportJob.id == job_id))[0][0] == "running"
        _wait(lambda: _query(app, select(ExportJob.id).where(ExportJob.id == job_id, ExportJob.status == "done")),
              timeout=180)
    finally:
        for proc in (active, standby):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except Exception:
                    proc.kill()
        for log in logs:
            log.close()

    (status, attempts, rows, name), = _query(app, select(ExportJob.status, ExportJob.attempts, ExportJob.rows_done,
                                                         ExportJob.file_name).where(ExportJob.id == job_id))
    assert (status, attempts, rows) == ("done", 2, VOLUNTEERS * PATROLS)
    path = export_dir(app.config["INSTANCE_PATH"]) / name
    wb = load_workbook(path, read_only=True)
    assert sum(1 for _r in wb["签到记录"].iter_rows()) == VOLUNTEERS * PATROLS + 1
    wb.close()
    # one complete file; the killed worker's half-written `.part` (if any) is left for the cleanup
    files = sorted(p.name for p in path.parent.iterdir())
    assert [f for f in files if not f.endswith(".part")] == [name] and len(files) <= 2
