"""PostgreSQL restarted (killed, then started again) in the middle of a scan burst: every scan
answered 200 is in the database, scans during the outage get a clear 503 (JSON from the API, a
friendly page on the phone), and the same app serves again by itself once the server is back."""
from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from extensions import db
from keys import code_signer
from models import Attendance, Event, PatrolPoint, ScanRecord, Shift, Volunteer
from services.clock import from_local
from services.qr import point_token
from services.signin import issue_login_link
from tests.faults.pgcluster import ThrowawayCluster
from tests.live import MovableClock

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
VOLUNTEERS = 40


def _setup(app) -> str:
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        event = Event(name="春节", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
        point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=31.0689, lon=121.5049, radius_m=150)
        db.session.add_all([event, point])
        db.session.flush()
        db.session.add(Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                             ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=VOLUNTEERS + 5))
        db.session.add_all([Volunteer(name=f"志愿者{i}", phone=f"1390000{i:04d}", vest_no=f"PJ-{i:04d}",
                                      joined_on=date(2026, 1, 1)) for i in range(VOLUNTEERS)])
        db.session.commit()
        with app.test_request_context():
            token = point_token(code_signer(), point)
        db.session.remove()
        return token


def _signed_in_phones(app) -> list:
    """One test client per volunteer, signed in through the one-time link service (the HTTP
    sign-in is rate limited per address, and every test client is 127.0.0.1)."""
    from services.signin import confirm_login_link
    from web.auth import DEVICE_COOKIE

    phones = []
    with app.app_context():
        ids = db.session.scalars(select(Volunteer.id).order_by(Volunteer.id)).all()
        for vid in ids:
            link = issue_login_link(db.session, vid, base_url="http://pingan.test", created_by="t").url
            signed = confirm_login_link(db.session, link.rsplit("/", 1)[1], user_agent="fault-test")
            phone = app.test_client()
            phone.set_cookie(DEVICE_COOKIE, signed.device_secret)
            phones.append(phone)
        db.session.remove()
    return phones


def test_scans_survive_a_postgresql_restart(tmp_path):
    cluster = ThrowawayCluster().init()
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DEMO": False,
                      "SQLALCHEMY_DATABASE_URI": cluster.url + "?connect_timeout=3",
                      "PUBLIC_BASE_URL": "http://pingan.test"})
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 5, 18, 2)))
    try:
        token = _setup(app)
        phones = _signed_in_phones(app)
        acknowledged: list[tuple[int, str]] = []   # (phone index, nonce) answered 200
        statuses: list[int] = []
        lock = threading.Lock()

        page = phones[0].get(f"/p/{token}").get_data(as_text=True)  # a phone page opened before the outage
        page_form = {"csrf_token": CSRF_RE.search(page).group(1), "nonce": uuid.uuid4().hex}

        def phone_loop(indexes: list[int]) -> None:
            """A few phones scanning one after another; one that got no 200 scans again (same nonce)."""
            nonces = {i: uuid.uuid4().hex for i in indexes}
            pending = list(indexes)
            deadline = time.monotonic() + 60
            while pending and time.monotonic() < deadline:
                i = pending.pop(0)
                resp = phones[i].post("/api/v1/scans", json={"token": token, "nonce": nonces[i]})
                with lock:
                    statuses.append(resp.status_code)
                if resp.status_code == 200:
                    assert resp.get_json()["action"] == "check_in"
                    with lock:
                        acknowledged.append((i, nonces[i]))
                else:
                    assert resp.status_code == 503, resp.get_data(as_text=True)
                    assert resp.get_json()["error"]["code"] == "db_unavailable"
                    pending.append(i)
                time.sleep(0.15)

        threads = [threading.Thread(target=phone_loop, args=(list(range(k, VOLUNTEERS, 4)),)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        cluster.stop("immediate")  # a crash: every connection in the pool is dead

        api = phones[1].post("/api/v1/scans", json={"token": token, "nonce": "during-outage"})
        assert api.status_code == 503 and api.headers["Retry-After"]
        assert api.get_json()["error"]["code"] == "db_unavailable"
        html = phones[0].post(f"/p/{token}", data=page_form)
        text = html.get_data(as_text=True)
        assert html.status_code == 503 and "本次没有记录" in text and "返回重试" in text
        assert app.test_client().get("/healthz").status_code == 503
        time.sleep(1.0)
        cluster.start()

        for t in threads:
            t.join(timeout=90)
        assert not any(t.is_alive() for t in threads)
        assert 503 in statuses, "no scan fell into the outage"
        assert app.test_client().get("/healthz").status_code == 200  # the same app, no restart
        retry = phones[0].post(f"/p/{token}", data=page_form)  # the phone's 返回重试
        assert retry.status_code in (200, 409)

        with app.app_context():
            recorded = set(db.session.execute(select(ScanRecord.volunteer_id, ScanRecord.nonce)
                                              .where(ScanRecord.action == "check_in")).all())
            vol_ids = db.session.scalars(select(Volunteer.id).order_by(Volunteer.id)).all()
            for i, nonce in acknowledged:
                assert (vol_ids[i], nonce) in recorded  # every 200 is in the database
            per_volunteer = dict(db.session.execute(select(Attendance.volunteer_id, func.count(Attendance.id))
                                                    .group_by(Attendance.volunteer_id)).all())
            db.session.remove()
        assert len(acknowledged) == VOLUNTEERS
        assert per_volunteer == {v: 1 for v in vol_ids}  # nothing lost, nothing doubled
    finally:
        with app.app_context():
            db.engine.dispose()
        cluster.remove()
