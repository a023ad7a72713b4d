"""Volunteer sign-in over HTTP."""
from __future__ import annotations

from datetime import date

from extensions import db
from models import Device, Volunteer
from services.signin import issue_login_link
from tests.conftest import CSRF_RE, csrf_from


def _volunteer(app, phone="13900000001", vest="PJ-0001"):
    with app.app_context():
        v = Volunteer(name="李四", phone=phone, vest_no=vest, team="丰顺居委", joined_on=date(2026, 1, 1))
        db.session.add(v)
        db.session.commit()
        return v.id


def _link(app, vol_id) -> str:
    with app.app_context():
        return issue_login_link(db.session, vol_id, base_url="http://pingan.test", created_by="test").url.replace(
            "http://pingan.test", "")


def test_link_survives_any_number_of_gets_and_is_used_up_by_the_post(app, client):
    path = _link(app, _volunteer(app))
    for _ in range(5):
        page = client.get(path)
        assert page.status_code == 200 and "确认登录" in page.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    resp = client.post(path, data={"csrf_token": token, "next": "/p/1.1.abc"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/p/1.1.abc"  # back to the scan
    assert "pv_device=" in resp.headers["Set-Cookie"] and "HttpOnly" in resp.headers["Set-Cookie"]
    me = client.get("/api/v1/me")
    body = me.get_json()
    assert me.status_code == 200
    assert (body["name"], body["team"], body["vest_no"]) == ("李四", "丰顺居委", "PJ-0001")
    assert (body["hours_total"], body["hours_target"], body["open_attendance"]) == (0.0, 6.0, None)

    other = app.test_client()
    again = other.post(path, data={"csrf_token": csrf_from(other)})  # /signin has no form while it is off
    assert again.status_code == 410
    assert "已经用过" in again.get_data(as_text=True)
    assert "已经用过" in client.get(path).get_data(as_text=True)


def test_unknown_link_and_open_redirects(app, client):
    assert client.get("/login/nonsense").status_code == 404
    path = _link(app, _volunteer(app))
    token = csrf_from(client, path)
    resp = client.post(path, data={"csrf_token": token, "next": "//evil.example/x"})
    assert resp.headers["Location"] == "/me"


def test_self_service_sign_in_with_pin_is_rate_limited_and_can_be_switched_off(app, client, auth):
    from services.settings import SELF_SERVICE_SIGNIN, set_setting
    from services.signin import issue_pin

    vol_id = _volunteer(app)
    with app.app_context():
        set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="test")
        pin = issue_pin(db.session, vol_id).pin
    token = csrf_from(client, "/signin")
    assert 'name="pin"' in client.get("/signin").get_data(as_text=True)
    bad = client.post("/signin", data={"csrf_token": token, "phone": "13900000001", "pin": "PJ-0001"})
    assert bad.status_code == 400 and "不正确" in bad.get_data(as_text=True)
    ok = client.post("/signin", data={"csrf_token": token, "phone": "139 0000 0001", "pin": pin, "next": "/me"})
    assert ok.status_code == 302
    with app.app_context():
        assert db.session.query(Device).one().method == "pin"
    statuses = [client.post("/signin", data={"csrf_token": token, "phone": "13900000001", "pin": "X"}).status_code
                for _ in range(6)]
    assert 429 in statuses

    admin = app.test_client()
    from tests.conftest import Auth
    Auth(app, admin).login("boss", role="admin")
    resp = admin.post("/coord/admin/settings", data={"csrf_token": csrf_from(admin, "/coord/admin/")})
    assert resp.status_code == 302
    fresh = app.test_client()
    page = fresh.get("/signin").get_data(as_text=True)
    assert "自助登录已关闭" in page


def test_me_page_and_sign_out(app, client, auth):
    auth.volunteer()
    page = client.get("/me").get_data(as_text=True)
    assert "张三" in page and "退出登录" in page
    client.post("/me/signout", data={"csrf_token": csrf_from(client, "/me")})
    assert client.get("/api/v1/me").status_code == 401
    body = client.get("/api/v1/me").get_json()
    assert body["error"]["code"] == "not_signed_in"


def test_scan_url_page_before_check_in_exists(app, client, runner, session):
    from services.imports import import_points
    from tests.factories import csv_bytes
    import_points(session, csv_bytes([["code", "name"], ["P1", "一号点"]]), "p.csv")
    result = runner.invoke(args=["points", "qr", "P1", "-o", "/dev/null"])
    url = result.output.split(": ", 1)[1].split(" ->")[0]
    page = client.get(url.replace("http://pingan.test", ""))
    assert page.status_code == 200 and "一号点" in page.get_data(as_text=True)
