"""Large exports go to the background (EXPORT_SYNC_MAX_ROWS), with a progress page and a download
only the user who asked (or an admin) gets; small ones still answer directly."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from extensions import db
from models import CoordinatorAction, ExportJob, Volunteer
from services.export_jobs import export_dir, run_next
from tests.conftest import Auth
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)


@pytest.fixture
def low_threshold(app):
    before = app.config["EXPORT_SYNC_MAX_ROWS"]
    app.config["EXPORT_SYNC_MAX_ROWS"] = 3
    yield
    app.config["EXPORT_SYNC_MAX_ROWS"] = before


def _work(app) -> str | None:
    with app.app_context():
        try:
            return run_next(db.session, worker="test", directory=export_dir(app.config["INSTANCE_PATH"]),
                            today=date(Y + 1, 1, 10))
        finally:
            db.session.remove()


def _job_id(resp) -> int:
    assert resp.status_code == 302, resp.status_code
    return int(re.search(r"/coord/exports/(\d+)$", resp.headers["Location"]).group(1))


def test_a_large_export_is_built_in_the_background(app, client, auth, session, programme, low_threshold):  # noqa: F811
    auth.login()
    job_id = _job_id(client.get(f"/coord/programme/export/attendance.xlsx?year={Y}"))
    assert _job_id(client.get(f"/coord/programme/export/attendance.xlsx?year={Y}")) == job_id  # a second click
    page = client.get(f"/coord/exports/{job_id}").get_data(as_text=True)
    assert "排队中" in page and 'http-equiv="refresh"' in page and "js/exportjob.js" in page
    assert "data-status-url" in page and "<script>" not in page
    status = client.get(f"/coord/exports/{job_id}/status").get_json()
    assert status["status"] == "queued" and status["rows_total"] == 7 and status["download_url"] is None
    assert client.get(f"/coord/exports/{job_id}/download").status_code == 409

    assert _work(app) == "done"
    status = client.get(f"/coord/exports/{job_id}/status").get_json()
    assert status["status"] == "done" and status["percent"] == 100 and status["download_url"]
    page = client.get(f"/coord/exports/{job_id}").get_data(as_text=True)
    assert "已完成" in page and f"/coord/exports/{job_id}/download" in page and "refresh" not in page
    resp = client.get(f"/coord/exports/{job_id}/download")
    assert resp.status_code == 200 and resp.data[:2] == b"PK"
    assert f"attendance-{Y}.xlsx" in resp.headers["Content-Disposition"]
    rows = list(load_workbook(io.BytesIO(resp.data))["签到记录"].iter_rows(values_only=True))
    assert len(rows) == 7
    resp.close()
    logged = session.scalars(select(CoordinatorAction).where(CoordinatorAction.action == "export")).all()
    assert [(a.target, a.detail) for a in logged] == [("programme:attendance", f"year={Y}; format=xlsx; job={job_id}")]
    listing = client.get("/coord/exports/").get_data(as_text=True)
    assert f"/coord/exports/{job_id}/download" in listing


def test_small_exports_still_answer_directly(client, auth, programme):  # noqa: F811
    auth.login()
    resp = client.get(f"/coord/programme/export/attendance.csv?year={Y}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert db.session.scalar(select(ExportJob.id)) is None


def test_only_the_requester_or_an_admin_gets_the_job(app, client, auth, programme, low_threshold):  # noqa: F811
    auth.login()
    job_id = _job_id(client.get("/coord/volunteers/export.csv"))
    assert _work(app) == "done"
    other = app.test_client()
    Auth(app, other).login("other", role="coordinator")
    for url in (f"/coord/exports/{job_id}", f"/coord/exports/{job_id}/status", f"/coord/exports/{job_id}/download"):
        assert other.get(url).status_code == 404, url
    assert f"/coord/exports/{job_id}" not in other.get("/coord/exports/").get_data(as_text=True)
    admin = app.test_client()
    Auth(app, admin).login("boss", role="admin")
    resp = admin.get(f"/coord/exports/{job_id}/download")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data.decode("utf-8-sig").splitlines()[0].startswith("姓名,手机号")
    resp.close()
    anonymous = app.test_client()
    resp = anonymous.get(f"/coord/exports/{job_id}/download")
    assert resp.status_code == 302 and "/coord/login" in resp.headers["Location"]
    phone = app.test_client()
    Auth(app, phone).volunteer(phone="13900009999", vest_no="PJ-9999")
    resp = phone.get(f"/coord/exports/{job_id}/download")
    assert resp.status_code == 302 and "/coord/login" in resp.headers["Location"]
    leader = app.test_client()
    Auth(app, leader).login("lead", role="leader")
    assert leader.get(f"/coord/exports/{job_id}/download").status_code == 403


def test_the_roster_with_id_numbers_in_the_background_stays_admin_only(app, client, auth, programme,  # noqa: F811
                                                                       low_threshold):
    auth.login()
    assert client.get("/coord/volunteers/export.xlsx?with_id_numbers=1").status_code == 403
    assert db.session.scalar(select(ExportJob.id)) is None


def test_the_english_page_and_file(app, client, auth, low_threshold):
    """The job remembers the requester's language (no `session` fixture here: its app context
    would be shared with the requests, and Flask-Babel caches the locale in it)."""
    with app.app_context():
        db.session.add_all([Volunteer(name=f"志愿者{i}", phone=f"1391111000{i}", joined_on=date(Y, 1, 1))
                            for i in range(5)])
        db.session.commit()
    auth.login()
    job_id = _job_id(client.get("/coord/volunteers/export.csv?lang=en"))
    page = client.get(f"/coord/exports/{job_id}?lang=en").get_data(as_text=True)
    assert "Queued" in page and "My exports" in page and "Volunteer roster" in page
    assert _work(app) == "done"
    resp = client.get(f"/coord/exports/{job_id}/download")
    assert resp.data.decode("utf-8-sig").splitlines()[0].startswith("Name,")
    resp.close()
