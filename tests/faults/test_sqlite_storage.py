"""SQLite on a full disk (PRAGMA max_page_count) or opened read-only (a `mode=ro` URI: CI runs as
root, so file modes would not stop it): a clear error from the web, the API and the command line,
and nothing half-written."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import event, func, insert, select, text

from app import create_app
from extensions import db
from keys import code_signer
from models import Attendance, Event, PatrolPoint, ScanRecord, Shift, Volunteer
from services.clock import from_local
from services.qr import point_token
from services.signin import confirm_login_link, issue_login_link
from tests.factories import roster_rows, xlsx_bytes
from tests.live import MovableClock
from web.auth import DEVICE_COOKIE

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]


def _app(uri: str, instance: Path, keys: dict | None = None):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance), "DEMO": False, "SQLALCHEMY_DATABASE_URI": uri,
                      "PUBLIC_BASE_URL": "http://pingan.test", **(keys or {})})
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 5, 18, 2)))
    return app


def _programme(app) -> tuple[str, str]:
    """Schema, a point with a shift now, one volunteer signed in on a phone: (scan token, device secret)."""
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        ev = Event(name="春节", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
        point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=31.0689, lon=121.5049, radius_m=150)
        vol = Volunteer(name="张三", phone="13900000001", vest_no="PJ-0001", joined_on=date(2026, 1, 1))
        db.session.add_all([ev, point, vol])
        db.session.flush()
        db.session.add(Shift(event_id=ev.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                             ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=10))
        db.session.commit()
        with app.test_request_context():
            token = point_token(code_signer(), point)
        link = issue_login_link(db.session, vol.id, base_url="http://pingan.test", created_by="t").url
        secret = confirm_login_link(db.session, link.rsplit("/", 1)[1], user_agent="t").device_secret
        db.session.remove()
    return token, secret


def _counts(app) -> dict[str, int]:
    with app.app_context():
        counts = {m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
                  for m in (Volunteer, ScanRecord, Attendance)}
        db.session.remove()
    return counts


def test_a_full_disk_gives_a_clear_error_and_writes_nothing(tmp_path):
    app = _app(f"sqlite:///{tmp_path / 'full.db'}", tmp_path)
    token, device = _programme(app)
    with app.app_context():
        engine = db.engine
        pages = db.session.scalar(text("PRAGMA page_count"))
        db.session.remove()

    @event.listens_for(engine, "connect")
    def _small_disk(dbapi_connection, _record):  # the "disk": 20 pages more than today
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 20}")

    engine.dispose()
    with app.app_context():  # fill it up with refused-scan rows until not even a small one fits
        for rows, filler in ((50, 200), (1, 40)):
            for _ in range(1000):
                try:
                    db.session.execute(insert(ScanRecord), [
                        {"scanned_at": from_local(datetime(2027, 1, 1)), "action": "refused", "code": "bad_token",
                         "response_json": "x" * filler} for _ in range(rows)])
                    db.session.commit()
                except Exception as exc:
                    db.session.rollback()
                    assert "full" in str(exc)
                    break
            else:
                pytest.fail("the disk never filled")
        db.session.remove()
    before = _counts(app)

    phone = app.test_client()
    phone.set_cookie(DEVICE_COOKIE, device)
    resp = phone.post("/api/v1/scans", json={"token": token, "nonce": "n1"})
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "storage_full" and "存储空间已满" in resp.get_json()["error"]["message"]

    roster = tmp_path / "roster.xlsx"
    roster.write_bytes(xlsx_bytes(roster_rows(300)))
    result = app.test_cli_runner().invoke(args=["import", "volunteers", str(roster)])
    assert result.exit_code == 1 and "storage_full" in result.output and "Traceback" not in result.output
    assert _counts(app) == before  # all-or-nothing: not one of the 300 volunteers, no scan, no attendance
    assert phone.get("/healthz").status_code == 200  # reading still works
    with app.app_context():
        assert db.session.scalar(text("PRAGMA integrity_check")) == "ok"
        db.session.remove()
        db.engine.dispose()


def test_a_read_only_database_gives_a_clear_error_and_writes_nothing(tmp_path):
    path = tmp_path / "ro.db"
    writer = _app(f"sqlite:///{path}", tmp_path)
    token, device = _programme(writer)
    before = _counts(writer)
    with writer.app_context():
        db.engine.dispose()

    keys = {"SECRET_KEY": writer.config["SECRET_KEY"], "DATA_KEY": writer.config["DATA_KEY"]}
    app = _app(f"sqlite:///file:{path}?mode=ro&uri=true", tmp_path, keys)
    phone = app.test_client()
    phone.set_cookie(DEVICE_COOKIE, device)
    assert phone.get("/healthz").status_code == 200
    assert phone.get("/me").status_code == 200  # pages that only read still work

    resp = phone.post("/api/v1/scans", json={"token": token, "nonce": "n1"})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "storage_readonly"
    page = phone.get(f"/p/{token}").get_data(as_text=True)
    import re
    form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1), "nonce": "n2"}
    html = phone.post(f"/p/{token}", data=form)
    assert html.status_code == 503 and "只读" in html.get_data(as_text=True)

    roster = tmp_path / "roster.xlsx"
    roster.write_bytes(xlsx_bytes(roster_rows(5)))
    result = app.test_cli_runner().invoke(args=["import", "volunteers", str(roster)])
    assert result.exit_code == 1 and "storage_readonly" in result.output and "Traceback" not in result.output
    with app.app_context():
        db.engine.dispose()
    assert _counts(writer) == before
