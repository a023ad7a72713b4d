"""20 concurrent scans of one volunteer against a real server: exactly one open attendance."""
from __future__ import annotations

import json
import threading
import urllib.request
from datetime import date, datetime

from sqlalchemy import func, select

from extensions import db
from keys import code_signer
from models import Attendance, Event, PatrolPoint, ScanRecord, Shift, Volunteer
from services.clock import from_local
from services.qr import point_token
from services.signin import confirm_login_link, issue_login_link
from tests.live import MovableClock, live_server


def _post_json(url: str, payload: dict, cookie: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Cookie": f"pv_device={cookie}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _world(app):
    with app.app_context():
        event = Event(name="并发测试", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 5))
        point = PatrolPoint(code="C1", name="并发点", radius_m=100)
        vol = Volunteer(name="并发", phone="13900009999", joined_on=date(2026, 1, 1))
        db.session.add_all([event, point, vol])
        db.session.flush()
        db.session.add(Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                             ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=5))
        db.session.commit()
        link = issue_login_link(db.session, vol.id, base_url="http://x", created_by="test")
        cookie = confirm_login_link(db.session, link.url.rsplit("/", 1)[1]).device_secret
        return point_token(code_signer(), point), cookie


def test_twenty_concurrent_scans_leave_exactly_one_open_attendance(app):
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 5, 18, 5)))
    try:
        token, cookie = _world(app)
        results: list[tuple[int, dict]] = []
        lock = threading.Lock()
        with live_server(app) as base:
            barrier = threading.Barrier(20)

            def fire(i: int) -> None:
                barrier.wait()
                out = _post_json(f"{base}/api/v1/scans", {"token": token, "nonce": f"tab-{i}"}, cookie)
                with lock:
                    results.append(out)

            threads = [threading.Thread(target=fire, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
    finally:
        app.config.pop("CLOCK", None)

    assert len(results) == 20
    assert all(status == 200 for status, _ in results), results
    actions = sorted(body["action"] for _, body in results)
    assert actions.count("check_in") == 1 and actions.count("duplicate") == 19
    with app.app_context():
        assert db.session.scalar(select(func.count(Attendance.id))) == 1
        assert db.session.scalar(select(func.count(Attendance.id)).where(Attendance.status == "open")) == 1
        assert db.session.scalar(select(func.count(ScanRecord.id))) == 20
