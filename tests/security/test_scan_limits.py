"""Anonymous writes are bounded; scans are limited per volunteer, not per address (issue 10, item 15)."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from extensions import db
from keys import code_signer
from models import Attendance, Event, PatrolPoint, ScanRecord, Shift, Volunteer
from services.checkin import ANONYMOUS_SCANS
from services.clock import from_local
from services.qr import point_token
from services.signin import confirm_login_link, issue_login_link
from tests.live import MovableClock

CARRIER = "100.64.0.1"  # one carrier-grade NAT address for every phone at the street corner


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
                      ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=60))
    session.commit()
    with app.test_request_context():
        return point_token(code_signer(), point)


def _phones(app, n: int):
    """n volunteers, each signed in on their own phone (a test client with a device cookie)."""
    clients = []
    with app.app_context():
        for i in range(n):
            v = Volunteer(name=f"志愿者{i}", phone=f"139{i:08d}", vest_no=f"PJ-{i:04d}", joined_on=date(2026, 1, 1))
            db.session.add(v)
            db.session.commit()
            url = issue_login_link(db.session, v.id, base_url="http://x", created_by="t").url
            secret = confirm_login_link(db.session, url.rsplit("/", 1)[1]).device_secret
            phone = app.test_client()
            phone.set_cookie("pv_device", secret)
            clients.append(phone)
    return clients


def _count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def _scan(client, token, addr=CARRIER, **body):
    return client.post("/api/v1/scans", json={"token": token, **body}, environ_base={"REMOTE_ADDR": addr})


def test_an_anonymous_scan_writes_nothing_and_is_limited_per_address(app, client, session, clock, token):
    before = ANONYMOUS_SCANS.total
    statuses = [_scan(client, token, addr="203.0.113.9").status_code for _ in range(12)]
    assert statuses[0] == 401 and statuses[-1] == 429
    assert statuses.index(429) == 10  # SCAN_RATE_LIMIT_ANONYMOUS = 10 per minute
    # The poster page's form is the same door.
    page = client.post(f"/p/{token}", data={"csrf_token": _csrf(client, token), "nonce": "n"},
                       environ_base={"REMOTE_ADDR": "203.0.113.10"})
    assert page.status_code == 401
    assert _count(ScanRecord) == 0 and _count(Attendance) == 0
    assert ANONYMOUS_SCANS.total == before + 11  # counted, not recorded (the 429s never reach the service)
    # Another address is not refused because of the first one.
    assert _scan(app.test_client(), token, addr="203.0.113.11").status_code == 401


def _csrf(client, token) -> str:
    page = client.get(f"/p/{token}", environ_base={"REMOTE_ADDR": "203.0.113.10"}).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match:
        return match.group(1)
    from tests.conftest import csrf_from
    return csrf_from(client, "/coord/login")


def test_forty_phones_behind_one_address_all_check_in(app, session, clock, token):
    phones = _phones(app, 40)
    results = [_scan(phone, token, lat=31.0689, lon=121.5049, accuracy=15) for phone in phones]
    assert [r.status_code for r in results] == [200] * 40
    assert {r.get_json()["action"] for r in results} == {"check_in"}
    assert _count(Attendance) == 40


def test_one_device_over_its_limit_is_refused_and_the_others_are_not(app, session, clock, token):
    greedy, other = _phones(app, 2)
    answers = [_scan(greedy, token, nonce=f"n{i}") for i in range(31)]
    statuses = [a.status_code for a in answers]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429  # 30 a minute per volunteer
    # The 429 says when to come back (the X-RateLimit-* headers are off: a second Redis call per scan).
    assert 1 <= int(answers[30].headers["Retry-After"]) <= 61
    assert "X-RateLimit-Remaining" not in answers[0].headers
    # The refusal is per volunteer: the other phone at the same address scans on, on the page too.
    assert _scan(other, token).status_code == 200
    page = greedy.get(f"/p/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert greedy.post(f"/p/{token}", data={"csrf_token": csrf, "nonce": "page"},
                       environ_base={"REMOTE_ADDR": CARRIER}).status_code == 429


@pytest.mark.parametrize("where", [
    {"lat": 90.5, "lon": 121.5}, {"lat": -91, "lon": 121.5}, {"lat": 31.0, "lon": 180.01},
    {"lat": 31.0, "lon": -181}, {"lat": 31.0},
])
def test_impossible_locations_get_a_clear_422_and_change_nothing(app, session, clock, token, where):
    (phone,) = _phones(app, 1)
    resp = _scan(phone, token, **where)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["code"] == "bad_location"
    assert "纬度" in resp.get_json()["error"]["message"]
    assert _count(ScanRecord) == 0 and _count(Attendance) == 0


def test_nan_and_garbage_are_refused_too(app, session, clock, token):
    (phone,) = _phones(app, 1)
    resp = phone.post("/api/v1/scans", data='{"token": "%s", "lat": NaN, "lon": 1}' % token,
                      content_type="application/json")
    assert resp.status_code == 422
    page = phone.get(f"/p/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    for bad in ({"lat": "95", "lon": "121.5"}, {"lat": "abc", "lon": "121.5"}, {"lat": "31", "lon": "inf"},
                {"lat": "31", "lon": "121.5", "accuracy": "inf"}, {"lat": "31", "lon": "121.5", "accuracy": "x"}):
        resp = phone.post(f"/p/{token}", data={"csrf_token": csrf, "nonce": "x", **bad})
        assert resp.status_code == 422 and "位置数据无效" in resp.get_data(as_text=True), bad
    assert _count(ScanRecord) == 0
    # The boundaries themselves are fine.
    ok = _scan(phone, token, lat=31.0689, lon=121.5049, accuracy=0)
    assert ok.status_code == 200


@pytest.mark.parametrize("accuracy", [10_001, 25_000, -1])
def test_a_coarse_fix_checks_in_as_no_location(app, session, clock, token, accuracy):
    """Accuracy beyond 10 km (approximate location) is no location, not a refusal (review, item 8)."""
    (phone,) = _phones(app, 1)
    resp = _scan(phone, token, lat=31.0, lon=121.5, accuracy=accuracy)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["action"] == "check_in" and resp.get_json()["flags"] == ["no_location"]
    record = session.scalars(select(ScanRecord)).one()
    assert (record.lat, record.lon, record.accuracy_m) == (None, None, None)


def test_a_database_lost_during_the_phone_lookup_is_a_503_and_not_a_rate_limiter_failure(
        app, session, clock, token, monkeypatch):
    """Flask-Limiter takes any exception from a key function for its own storage failing: it moves
    the whole process to in-memory limits and asks again, and the second lookup on the dead
    connection raised a non-database error (a 500; seen in CI with PostgreSQL killed mid-burst).
    The phone is looked up before the limiter, so a lost database is the app's 503 and nothing else."""
    from sqlalchemy.exc import OperationalError, PendingRollbackError

    from extensions import limiter

    (phone,) = _phones(app, 1)
    page = phone.get(f"/p/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    calls = []

    def lost(*_a, **_k):
        """The first lookup of a request finds the connection dead; asking again on the same session
        is what SQLAlchemy refuses until the transaction is rolled back."""
        from flask import request
        calls.append(1)
        if request.environ.setdefault("test.lost", 0) == 0:
            request.environ["test.lost"] = 1
            raise OperationalError("SELECT devices…", {}, Exception("server closed the connection unexpectedly"))
        raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back")

    monkeypatch.setattr("web.auth.device_volunteer", lost)
    monkeypatch.setattr(limiter, "_storage_dead", False)
    api = phone.post("/api/v1/scans", json={"token": token, "nonce": "n1"})
    assert api.status_code == 503 and api.get_json()["error"]["code"] == "db_unavailable"
    html = phone.post(f"/p/{token}", data={"csrf_token": csrf, "nonce": "n2"})
    assert html.status_code == 503 and "本次没有记录" in html.get_data(as_text=True)
    assert limiter._storage_dead is False   # the limiter's storage was never in doubt
    assert len(calls) == 2                  # one lookup per request
    monkeypatch.undo()
    assert _scan(phone, token).status_code == 200   # and the phone scans once the database is back
    assert _count(ScanRecord) == 1


def test_office_pages_never_look_the_phone_up(app, session, clock, token, auth, client):
    """Only the volunteers' pages look the device cookie up (before the rate limiter): an office
    page visited from a phone that is also signed in as a volunteer must not stamp its "last seen"
    (a commit on an office page counts as a change to the indicators)."""
    from models import Device

    (phone,) = _phones(app, 1)
    device = session.scalars(select(Device)).one()
    seen_before = device.last_seen_at
    auth.login()
    client.set_cookie("pv_device", phone.get_cookie("pv_device").value)
    clock.advance(minutes=30)
    for path in ("/coord/board/", "/healthz", "/lang/en"):
        client.get(path)
    session.expire_all()
    assert session.get(Device, device.id).last_seen_at == seen_before
    client.get("/me")   # a volunteer page: looked up, and stamped
    session.expire_all()
    assert session.get(Device, device.id).last_seen_at != seen_before


def test_a_volunteers_phones_share_one_budget(app, session, clock, token):
    """One card signs in any number of phones: a budget per phone multiplied what it could write."""
    (first,) = _phones(app, 1)
    with app.app_context():
        vol_id = db.session.scalar(select(Volunteer.id))
        url = issue_login_link(db.session, vol_id, base_url="http://x", created_by="t").url
        second = app.test_client()
        second.set_cookie("pv_device", confirm_login_link(db.session, url.rsplit("/", 1)[1]).device_secret)
    statuses = [_scan(phone, token, nonce=f"n{i}").status_code for i in range(15) for phone in (first, second)]
    assert statuses == [200] * 30
    assert _scan(second, token, nonce="over").status_code == 429
    assert _scan(first, token, nonce="over2").status_code == 429


@pytest.mark.parametrize("client_time", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00",
                                         "1899-12-31T00:00:00+08:00"])
def test_a_phone_time_beyond_reason_is_a_422(app, session, clock, token, client_time):
    (phone,) = _phones(app, 1)
    resp = phone.post("/api/v1/scans", json={"token": token, "nonce": "t", "client_time": client_time})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert "client_time" in resp.get_json()["error"]["details"]["fields"]["json"]
    assert _count(ScanRecord) == 0


def test_a_phone_clock_reset_to_1970_is_too_old_and_listed(app, session, clock, token):
    (phone,) = _phones(app, 1)
    resp = phone.post("/api/v1/scans", json={"token": token, "nonce": "t", "client_time": "1970-01-01T08:00:00+08:00"})
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "offline_too_old"
    assert _count(ScanRecord) == 1   # kept, for the coordinators' list of late offline scans


def test_the_service_refuses_an_overflowing_phone_time_too(app, session, clock, token):
    from datetime import timezone as tz, timedelta
    from services.checkin import ScanRules, scan
    from services.errors import DomainError

    (phone,) = _phones(app, 1)
    with app.app_context():
        vol_id = db.session.scalar(select(Volunteer.id))
        with pytest.raises(DomainError) as refused:
            scan(db.session, vol_id, token, signer=code_signer(), rules=ScanRules(), clock=clock,
                 client_time=datetime(1, 1, 1, tzinfo=tz(timedelta(hours=14))))
        assert refused.value.code == "bad_client_time"
    assert _count(ScanRecord) == 0


def test_a_body_nested_beyond_reason_is_a_400(app, session, clock, token):
    (phone,) = _phones(app, 1)
    body = '{"token": "x", "z": ' + "[" * 100_000 + "]" * 100_000 + "}"
    resp = phone.post("/api/v1/scans", data=body, content_type="application/json")
    assert resp.status_code == 400
    assert _count(ScanRecord) == 0


def test_a_location_in_quotes_is_refused_by_the_api(app, session, clock, token):
    (phone,) = _phones(app, 1)
    for bad in ({"lat": "31.0689", "lon": 121.5049}, {"lat": 31.0689, "lon": 121.5049, "accuracy": True}):
        resp = phone.post("/api/v1/scans", json={"token": token, "nonce": "q", **bad})
        assert resp.status_code == 422, bad
    assert _count(ScanRecord) == 0
    assert _scan(phone, token, lat=31.0689, lon=121.5049, accuracy=15).status_code == 200
