"""The coordinator web, page by page, as a signed-in coordinator."""
from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from extensions import db
from models import Assignment, Device, Event, PatrolPoint, Shift, User, Volunteer
from services.coords import distance_m
from tests.conftest import csrf_from, utc
from tests.factories import csv_bytes, roster_rows, xlsx_bytes


def test_sign_in_with_wrong_password_and_rate_limit(app, client, auth):
    auth.user()
    token = csrf_from(client)
    bad = client.post("/coord/login", data={"username": "coord", "password": "nope", "csrf_token": token})
    assert bad.status_code == 401 and "不正确" in bad.get_data(as_text=True)
    codes = [client.post("/coord/login", data={"username": "coord", "password": "nope", "csrf_token": token}).status_code
             for _ in range(12)]
    assert codes[-1] == 429


def test_sign_in_redirects_back_and_sign_out(client, auth):
    auth.user()
    first = client.get("/coord/points/")
    assert first.status_code == 302
    token = csrf_from(client)
    resp = client.post("/coord/login", data={"username": "coord", "password": "password-123", "csrf_token": token,
                                             "next": "/coord/points/"})
    assert resp.headers["Location"] == "/coord/points/"
    assert client.get("/coord/").status_code == 200
    client.post("/coord/logout", data={"csrf_token": csrf_from(client, "/coord/")})
    assert client.get("/coord/").status_code == 302


def test_roster_import_shows_every_bad_row_then_imports(app, client, auth):
    auth.login()
    rows = roster_rows(8)
    rows[3][1] = "123"
    rows[6][1] = "abc"
    token = csrf_from(client, "/coord/volunteers/import")
    resp = client.post("/coord/volunteers/import", data={"csrf_token": token,
                       "file": (io.BytesIO(xlsx_bytes(rows)), "roster.xlsx")}, content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert "导入失败" in page and ">4<" in page and ">7<" in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Volunteer.id))) == 0
    rows[3][1], rows[6][1] = "13900000091", "13900000092"
    resp = client.post("/coord/volunteers/import", data={"csrf_token": token,
                       "file": (io.BytesIO(csv_bytes(rows, "gb18030")), "名单.csv")}, content_type="multipart/form-data")
    assert "导入成功" in resp.get_data(as_text=True)
    listing = client.get("/coord/volunteers/?team=塘口居委").get_data(as_text=True)
    assert "志愿者001" in listing and "志愿者002" not in listing


def test_volunteer_detail_link_devices_withdraw(app, client, auth):
    auth.login()
    phone_client = app.test_client()
    from tests.conftest import Auth
    vol_id = Auth(app, phone_client).volunteer()
    page = client.get(f"/coord/volunteers/{vol_id}").get_data(as_text=True)
    assert "登录链接" in page and "注销" in page
    token = csrf_from(client, f"/coord/volunteers/{vol_id}")
    link_page = client.post(f"/coord/volunteers/{vol_id}/login-link", data={"csrf_token": token}).get_data(as_text=True)
    assert "data:image/png;base64," in link_page
    assert re.search(r"http://pingan\.test/login/[\w-]+", link_page)
    with app.app_context():
        device_id = db.session.scalar(select(Device.id))
    client.post(f"/coord/volunteers/{vol_id}/devices/{device_id}/revoke", data={"csrf_token": token})
    assert phone_client.get("/api/v1/me").status_code == 401
    resp = client.post(f"/coord/volunteers/{vol_id}/withdraw", data={"csrf_token": token, "withdrawn_on": "2026-11-20"})
    assert resp.status_code == 302
    with app.app_context():
        vol = db.session.get(Volunteer, vol_id)
        assert (vol.status, str(vol.withdrawn_on)) == ("withdrawn", "2026-11-20")
    bad = client.post(f"/coord/volunteers/{vol_id}/withdraw", data={"csrf_token": token, "withdrawn_on": "soon"},
                      follow_redirects=True)
    assert "有效的退出日期" in bad.get_data(as_text=True)


def test_cards_pdf_and_export_from_the_web(client, auth, session, cipher):
    from services.imports import import_volunteers
    import_volunteers(session, xlsx_bytes(roster_rows(3)), "r.xlsx", cipher=cipher)
    auth.login()
    pdf = client.get("/coord/volunteers/cards.pdf?team=塘口居委")
    assert pdf.status_code == 200 and pdf.data[:4] == b"%PDF"
    xlsx = client.get("/coord/volunteers/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_point_create_in_gcj02_edit_rotate_and_downloads(app, client, auth):
    auth.login()
    token = csrf_from(client, "/coord/points/new")
    resp = client.post("/coord/points/new", data={"csrf_token": token, "code": "P9", "name": "测试点",
                       "lat": "31.17530398364597", "lon": "121.531541859215", "coords": "gcj02", "radius_m": "80",
                       "active": "1"})
    assert resp.status_code == 302
    with app.app_context():
        p = db.session.scalar(select(PatrolPoint))
        assert distance_m(p.lat, p.lon, 31.1774276, 121.5272106) < 1.0 and p.radius_m == 80
        pid = p.id
    dup = client.post("/coord/points/new", data={"csrf_token": token, "code": "P9", "name": "x", "radius_m": "80"})
    assert dup.status_code == 400 and "已存在" in dup.get_data(as_text=True)
    half = client.post(f"/coord/points/{pid}", data={"csrf_token": token, "code": "P9", "name": "x", "lat": "31.1",
                                                     "radius_m": "80", "active": "1"})
    assert half.status_code == 400 and "都填" in half.get_data(as_text=True)
    client.post(f"/coord/points/{pid}/rotate", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(PatrolPoint, pid).key_version == 2
    assert client.get(f"/coord/points/{pid}/qr.png").data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/coord/points/{pid}/poster.pdf").data[:4] == b"%PDF"
    assert client.get("/coord/points/posters.pdf").data[:4] == b"%PDF"


def test_events_shifts_and_assignments(app, client, auth, session, cipher):
    from services.imports import import_points, import_volunteers
    import_points(session, csv_bytes([["code", "name"], ["P1", "一号点"]]), "p.csv")
    import_volunteers(session, xlsx_bytes(roster_rows(3)), "r.xlsx", cipher=cipher)
    auth.login()
    token = csrf_from(client, "/coord/events/")
    bad = client.post("/coord/events/", data={"csrf_token": token, "name": "春节", "starts_on": "2027-02-10",
                                              "ends_on": "2027-02-01"})
    assert bad.status_code == 400 and "不能早于" in bad.get_data(as_text=True)
    resp = client.post("/coord/events/", data={"csrf_token": token, "name": "春节", "starts_on": "2027-02-05",
                                               "ends_on": "2027-02-20"})
    event_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    client.post(f"/coord/events/{event_id}/shifts", data={"csrf_token": token, "point_code": "P1",
                "starts_at": "2027-02-05T18:00", "ends_at": "2027-02-05T23:00", "capacity": "5"})
    with app.app_context():
        shift = db.session.scalar(select(Shift))
        assert shift.starts_at == utc(2027, 2, 5, 10, 0)
        shift_id = shift.id
    resp = client.post(f"/coord/events/shifts/{shift_id}/assign", data={"csrf_token": token,
                       "volunteers": "13900000001\nPJ-0002\n13912345678"}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "已安排 2 人" in page and "13912345678" in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Assignment.id))) == 2
        vid = db.session.scalar(select(Volunteer.id).where(Volunteer.phone == "13900000001"))
    client.post(f"/coord/events/shifts/{shift_id}/unassign/{vid}", data={"csrf_token": token})
    client.post(f"/coord/events/shifts/{shift_id}", data={"csrf_token": token, "point_code": "P1",
                "starts_at": "2027-02-05T19:00", "ends_at": "2027-02-05T22:00", "capacity": "8"})
    with app.app_context():
        assert db.session.scalar(select(func.count(Assignment.id))) == 1
        assert db.session.get(Shift, shift_id).capacity == 8
    detail = client.get(f"/coord/events/{event_id}").get_data(as_text=True)
    assert "2027-02-05 19:00" in detail
    client.post(f"/coord/events/shifts/{shift_id}/delete", data={"csrf_token": token})
    with app.app_context():
        assert db.session.scalar(select(func.count(Shift.id))) == 0


def test_shift_import_page(app, client, auth, session):
    from services.imports import import_points
    import_points(session, csv_bytes([["code", "name"], ["P1", "一号点"]]), "p.csv")
    auth.login()
    token = csrf_from(client, "/coord/events/import")
    data = csv_bytes([["活动", "点位编号", "开始时间", "结束时间"], ["元宵", "P1", "2027-02-20 18:30", "2027-02-20 22:00"]])
    resp = client.post("/coord/events/import", data={"csrf_token": token, "file": (io.BytesIO(data), "s.csv")},
                       content_type="multipart/form-data")
    assert "导入成功" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Event.name)) == "元宵"


def test_admin_manages_accounts_but_not_the_last_admin(app, client, auth):
    auth.login("boss", role="admin")
    token = csrf_from(client, "/coord/admin/")
    resp = client.post("/coord/admin/accounts", data={"csrf_token": token, "username": "wang", "password": "long-enough",
                                                      "role": "coordinator"})
    assert resp.status_code == 302
    short = client.post("/coord/admin/accounts", data={"csrf_token": token, "username": "li", "password": "x",
                                                       "role": "coordinator"})
    assert short.status_code == 400
    with app.app_context():
        boss_id = db.session.scalar(select(User.id).where(User.username == "boss"))
    demote = client.post(f"/coord/admin/accounts/{boss_id}", data={"csrf_token": token, "role": "coordinator"})
    assert demote.status_code == 400 and "管理员" in demote.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, boss_id).role == "admin"


def test_dashboard_and_cards_count_a_withdrawal_dated_ahead_until_its_day(client, auth, session, tmp_path):
    """Someone leaving next week is on the roster (and patrols) until then: counted, and their card
    printed; someone who has left is neither."""
    import re
    import subprocess
    from datetime import date, timedelta

    from models import Volunteer

    today = date.today()
    session.add_all([Volunteer(name="甲在册", phone="13900000001", joined_on=date(2026, 1, 1)),
                     Volunteer(name="乙将退出", phone="13900000002", joined_on=date(2026, 1, 1), status="withdrawn",
                               withdrawn_on=today + timedelta(days=10)),
                     Volunteer(name="丙已退出", phone="13900000003", joined_on=date(2026, 1, 1), status="withdrawn",
                               withdrawn_on=today - timedelta(days=10))])
    session.commit()
    auth.login()
    page = client.get("/coord/").get_data(as_text=True)
    assert re.search(r"<strong>2</strong><span>在册志愿者", page), page
    pdf = client.get("/coord/volunteers/cards.pdf")
    (tmp_path / "cards.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(tmp_path / "cards.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "甲在册" in text and "乙将退出" in text and "丙已退出" not in text
