"""One phone scanning for two volunteers is flagged, though each sign-in is a new device (review, item 5)."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from keys import code_signer
from models import Event, PatrolPoint, ScanRecord, Shift
from services.clock import from_local
from services.qr import point_token
from tests.conftest import Auth, csrf_from
from tests.live import MovableClock


@pytest.fixture
def clock(app):
    clk = MovableClock(from_local(datetime(2027, 2, 5, 18, 2)))
    app.config["CLOCK"] = clk
    yield clk
    app.config.pop("CLOCK", None)


@pytest.fixture
def token(app, session):
    event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
    point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=31.0689, lon=121.5049, radius_m=150)
    session.add_all([event, point])
    session.flush()
    session.add(Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                      ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=10))
    session.commit()
    with app.test_request_context():
        return point_token(code_signer(), point)


def _scan(client, token):
    return client.post("/api/v1/scans", json={"token": token, "lat": 31.0689, "lon": 121.5049, "accuracy": 10})


def test_two_volunteers_signing_in_on_one_browser_are_flagged_shared_device(app, client, auth, session, clock, token):
    auth.volunteer("张三", "13900000001", "PJ-0001")
    first = _scan(client, token)
    assert first.status_code == 200 and first.get_json()["flags"] == []
    browser = client.get_cookie("pv_browser")
    assert browser is not None and browser.http_only and browser.same_site == "Lax"
    # Signing out keeps the browser id.
    assert client.post("/me/signout", data={"csrf_token": csrf_from(client, "/me")}).status_code == 302
    auth.volunteer("李四", "13900000002", "PJ-0002")  # same browser, a new sign-in and a new device row
    assert client.get_cookie("pv_browser").value == browser.value
    second = _scan(client, token)
    assert second.status_code == 200 and second.get_json()["action"] == "check_in"
    assert "shared_device" in second.get_json()["flags"]
    records = session.scalars(select(ScanRecord).order_by(ScanRecord.id)).all()
    assert records[0].device_id != records[1].device_id  # what the flag used to compare
    assert records[0].browser_hash == records[1].browser_hash != browser.value  # only a hash is kept


def test_volunteers_on_their_own_phones_are_not_flagged(app, client, auth, session, clock, token):
    auth.volunteer("张三", "13900000001", "PJ-0001")
    assert _scan(client, token).get_json()["flags"] == []
    other = app.test_client()
    Auth(app, other).volunteer("李四", "13900000002", "PJ-0002")
    resp = _scan(other, token)
    assert resp.status_code == 200 and resp.get_json()["flags"] == []
