"""Odd input is a clear 4xx, never a 500 (review items 11 and 12): NUL bytes, Unicode digits,
nan/inf, a non-number id, years outside 2000–2100, a CSV field over the csv module's limit.
Each request is the one the reviewer sent."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from extensions import db
from models import HourAdjustment, PatrolPoint, Volunteer
from services.imports import import_volunteers
from tests.conftest import csrf_from


@pytest.fixture
def vol_id(app) -> int:
    with app.app_context():
        v = Volunteer(name="王五", phone="13900000009", joined_on=date(2026, 1, 1))
        db.session.add(v)
        db.session.commit()
        return v.id


def test_nul_bytes_are_refused_with_a_translated_400(app, client):
    token = csrf_from(client)
    resp = client.post("/coord/login", data={"username": "a\x00b", "password": "x", "csrf_token": token})
    assert resp.status_code == 400 and "空字符" in resp.get_data(as_text=True)
    api = client.get("/api/v1/points/A%00B")
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "nul_in_input"
    assert client.get("/api/v1/points?x=a%00b").status_code == 400
    english = client.get("/api/v1/points/A%00B", headers={"Accept-Language": "en"})
    assert english.status_code == 400


def test_unicode_digits_nan_and_bad_ids_are_not_500(app, client, auth, vol_id):
    auth.login()
    token = csrf_from(client, "/coord/")
    assert client.post("/coord/inbox/read", data={"csrf_token": token, "message_id": ["²", "1" * 20, "3"]}) \
        .status_code == 302
    for bad in ("nan", "inf", "-inf", "NaN"):
        resp = client.post(f"/coord/attendance/volunteer/{vol_id}/adjust",
                           data={"csrf_token": token, "hours": bad, "work_date": "2026-03-01", "reason": "x"})
        assert resp.status_code == 302, bad
    with app.app_context():
        assert db.session.scalar(select(func.count(HourAdjustment.id))) == 0
    resp = client.post("/coord/programme/complaints", data={"csrf_token": token, "complaint_id": "abc"},
                       follow_redirects=True)
    assert resp.status_code == 200 and "投诉无效" in resp.get_data(as_text=True)
    for bad in ("nan", "inf"):
        resp = client.post("/coord/points/new", data={"csrf_token": token, "code": "P1", "name": "一号点",
                                                      "radius_m": bad})
        assert resp.status_code == 400, bad
    with app.app_context():
        assert db.session.scalar(select(func.count(PatrolPoint.id))) == 0


def test_me_inbox_read_with_a_unicode_digit(app, client, auth):
    auth.volunteer()
    token = csrf_from(client, "/me")
    assert client.post("/me/inbox/read", data={"csrf_token": token, "message_id": "²"}).status_code == 302


@pytest.mark.parametrize("year", ["-1", "9999", "10000", "1" * 20, "²", "1999"])
def test_years_outside_2000_2100_are_a_clear_400(app, client, auth, vol_id, year):
    auth.login()
    for path in ("/coord/programme/", "/coord/programme/budget", "/coord/programme/export/hours.xlsx",
                 "/coord/programme/export/self-evaluation.csv", f"/coord/volunteers/{vol_id}"):
        resp = client.get(path, query_string={"year": year})
        assert resp.status_code == 400 and "2000" in resp.get_data(as_text=True), (path, resp.status_code)
    api = client.get("/api/v1/indicators", query_string={"year": year})
    assert api.status_code in (400, 422) and "error" in api.get_json()
    assert client.get("/coord/programme/", query_string={"year": "2026"}).status_code == 200


def test_a_csv_field_over_128_kib_is_a_bad_file(session, cipher):
    data = ("姓名,手机号\n" + "甲" * 140_000 + ",13900000001\n").encode("utf-8")
    report = import_volunteers(session, data, "r.csv", cipher=cipher)
    assert [e.code for e in report.errors] == ["bad_file"]


HUGE = "99999999999999999999"   # beyond SQLite's 64-bit integers and PostgreSQL's integer


def test_ids_no_database_can_hold_are_a_404_not_a_500(app, client, auth, vol_id):
    """Every `<int:…>` route shares one converter bounded at PostgreSQL's integer."""
    assert client.get(f"/api/v1/events/{HUGE}").status_code == 404
    assert client.get(f"/api/v1/events/{2**31}").status_code == 404
    auth.login()
    for path in (f"/coord/volunteers/{HUGE}", f"/coord/events/{HUGE}", f"/coord/events/shifts/{HUGE}",
                 f"/coord/exports/{HUGE}", f"/coord/notices/{HUGE}", f"/coord/points/{HUGE}/qr.png",
                 f"/coord/volunteers/{HUGE}/card.pdf", f"/coord/volunteers/{2**31}"):
        assert client.get(path).status_code == 404, path
    # As a query value it is as if absent (the whole board, the first page).
    for path in ("/coord/board/", "/coord/attendance/", "/coord/volunteers/"):
        resp = client.get(path, query_string={"point": HUGE, "point_id": HUGE, "event_id": HUGE, "page": HUGE})
        assert resp.status_code == 200, path
    assert client.get(f"/coord/volunteers/{vol_id}").status_code == 200


def test_a_volunteers_huge_shift_id_is_a_404(app, client, auth):
    auth.volunteer()
    token = csrf_from(client, "/me")
    assert client.post(f"/me/shifts/{HUGE}/confirm", data={"csrf_token": token}).status_code == 404
