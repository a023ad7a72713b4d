"""The scan page and the scan API over HTTP."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from extensions import db
from keys import code_signer
from models import Attendance, Event, PatrolPoint, ScanRecord, Shift
from services.clock import from_local
from services.qr import point_token
from tests.conftest import csrf_from
from tests.live import MovableClock

NONCE_RE = re.compile(r'name="nonce" value="([0-9a-f]+)"')


@pytest.fixture
def clock(app):
    clk = MovableClock(from_local(datetime(2027, 2, 5, 18, 2)))
    app.config["CLOCK"] = clk
    yield clk
    app.config.pop("CLOCK", None)


@pytest.fixture
def point_path(app, session):
    event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
    point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=31.0689, lon=121.5049, radius_m=150)
    session.add_all([event, point])
    session.flush()
    session.add(Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                      ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=10))
    session.commit()
    with app.test_request_context():
        return "/p/" + point_token(code_signer(), point)


def _post(client, path, **extra):
    page = client.get(path).get_data(as_text=True)
    data = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
            "nonce": NONCE_RE.search(page).group(1), **extra}
    return client.post(path, data=data)


def test_get_changes_nothing_and_shows_the_button(client, auth, clock, point_path, session):
    auth.volunteer()
    for _ in range(3):
        page = client.get(point_path)
        assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "周浦塘桥路口" in html and "签到" in html and 'data-geofence="1"' in html
    assert 'data-ok="已获取位置（精度约 %s 米）"' in html  # the script fills in the accuracy
    assert session.scalar(select(func.count(Attendance.id))) == 0
    assert session.scalar(select(func.count(ScanRecord.id))) == 0


def test_post_without_csrf_is_refused(client, auth, clock, point_path, session):
    auth.volunteer()
    resp = client.post(point_path, data={"nonce": "abc"})
    assert resp.status_code == 400 and "没有做任何修改" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count(Attendance.id))) == 0


def test_check_in_and_out_on_the_page(client, auth, clock, point_path):
    auth.volunteer()
    resp = _post(client, point_path, lat="31.0689", lon="121.5049", accuracy="12")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "签到成功" in html and "18:02" in html and "周浦塘桥路口" in html
    clock.advance(hours=2, minutes=30)
    page = client.get(point_path).get_data(as_text=True)
    assert "签退" in page and "已签到" in page
    resp = _post(client, point_path, lat="31.0689", lon="121.5049")
    html = resp.get_data(as_text=True)
    # 20:32, before the shift's 21:00 end: asked first, nothing changed yet
    assert "现在结束巡逻？" in html and "已经 2 小时 30 分钟" in html and "21:00 结束" in html
    assert "签退成功" not in html and "继续巡逻" in html
    assert "已签到" in client.get(point_path).get_data(as_text=True)
    confirm = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html))
    assert confirm["confirm"] == "1" and confirm["lat"] == "31.0689"
    html = client.post(point_path, data=confirm).get_data(as_text=True)
    assert "签退成功" in html and "本次计 2.5 小时" in html and "今年累计 2.5 小时" in html


def test_a_page_left_open_for_hours_still_checks_out(client, auth, clock, point_path):
    auth.volunteer()
    _post(client, point_path)
    page = client.get(point_path).get_data(as_text=True)  # the page the volunteer leaves open
    clock.advance(hours=2, minutes=50)
    data = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
            "nonce": NONCE_RE.search(page).group(1)}
    resp = client.post(point_path, data=data)
    assert "现在结束巡逻？" in resp.get_data(as_text=True)  # 20:52, before the shift's end
    resp = client.post(point_path, data={**data, "confirm": "1"})
    assert "签退成功" in resp.get_data(as_text=True)


def test_not_signed_in_is_told_how_to_sign_in(client, clock, point_path):
    page = client.get(point_path).get_data(as_text=True)
    assert "还没有登录" in page and "/signin?next=" in page and 'id="scan-form"' not in page


def test_sign_in_redirects_back_to_the_poster(app, client, clock, point_path):
    client.get(point_path)
    from models import Volunteer
    from services.signin import issue_login_link
    with app.app_context():
        v = Volunteer(name="王五", phone="13900000005", joined_on=date(2026, 1, 1))
        db.session.add(v)
        db.session.commit()
        url = issue_login_link(db.session, v.id, base_url="http://pingan.test", created_by="t").url
    path = url.replace("http://pingan.test", "")
    resp = client.post(path, data={"csrf_token": csrf_from(client, path)})
    assert resp.headers["Location"] == point_path


def test_refusal_page_is_clear(client, auth, clock, point_path):
    auth.volunteer()
    clock.advance(hours=5)  # 23:02, window closed at 21:30
    page = client.get(point_path).get_data(as_text=True)
    assert "没有可签到的班次" in page and 'id="scan-form"' not in page
    token = csrf_from(client, "/me")  # a stale tab, or a form kept from earlier
    resp = client.post(point_path, data={"csrf_token": token, "nonce": "n1"})
    assert resp.status_code == 409 and "no_active_shift" in resp.get_data(as_text=True)


def test_scan_api(client, auth, clock, point_path, session):
    token = point_path.rsplit("/", 1)[1]
    anon = client.post("/api/v1/scans", json={"token": token})
    assert anon.status_code == 401 and anon.get_json()["error"]["code"] == "not_signed_in"
    auth.volunteer()
    first = client.post("/api/v1/scans", json={"token": token, "lat": 31.0689, "lon": 121.5049, "nonce": "a1"})
    body = first.get_json()
    assert first.status_code == 200 and body["action"] == "check_in"
    assert body["attendance"]["status"] == "open" and body["flags"] == []
    replay = client.post("/api/v1/scans", json={"token": token, "nonce": "a1"}).get_json()
    assert replay["action"] == "check_in" and replay["replayed"] and replay["attendance"] == body["attendance"]
    assert client.post("/api/v1/scans", json={"token": token}).get_json()["action"] == "duplicate"
    clock.advance(hours=1)
    asked = client.post("/api/v1/scans", json={"token": token, "nonce": "a2"}).get_json()
    assert asked["action"] == "confirm_checkout" and asked["elapsed_minutes"] == 60
    assert asked["shift_ends_at"].startswith("2027-02-05T13:00") and asked["attendance"]["status"] == "open"
    out = client.post("/api/v1/scans", json={"token": token, "nonce": "a2", "confirm": True}).get_json()
    assert out["action"] == "check_out" and out["attendance"]["credited_minutes"] == 60 and out["hours_year"] == 1.0
    assert "no_location" in out["flags"]
    me = client.get("/api/v1/me").get_json()
    assert (me["hours_total"], me["hours_verified"], me["open_attendance"]) == (1.0, 1.0, None)
    bad = client.post("/api/v1/scans", json={"token": token[:-3] + "abc"})
    assert bad.status_code == 404 and bad.get_json()["error"]["code"] == "bad_token"
    missing = client.post("/api/v1/scans", json={})
    assert missing.status_code == 422 and "error" in missing.get_json()


def test_me_page_shows_hours_in_three_buckets(client, auth, clock, point_path):
    auth.volunteer()
    _post(client, point_path)
    page = client.get("/me").get_data(as_text=True)
    assert "正在巡逻" in page and "扫码核验" in page and "历史导入" in page and "人工登记" in page


def test_hours_shown_on_the_phone_round_down(client, auth, clock, point_path, session):
    auth.volunteer()
    assert "签到成功" in _post(client, point_path).get_data(as_text=True)     # 18:02
    clock.advance(minutes=177)                                                # 20:59: 2 h 57 min
    page = _post(client, point_path, confirm="1").get_data(as_text=True)  # before the end: confirmed
    assert "本次计 2.9 小时" in page and "今年累计 2.9 小时" in page
    me = client.get("/api/v1/me").get_json()
    assert (me["hours_total"], me["hours_verified"], me["minutes_total"], me["minutes_verified"]) == (2.9, 2.9, 177, 177)
    assert "<strong>2.9</strong>" in client.get("/me").get_data(as_text=True)


def test_a_withdrawal_dated_tomorrow_keeps_the_phone_scanning_today(client, auth, clock, point_path, session):
    from services.volunteers import withdraw_volunteer

    vol_id = auth.volunteer()
    withdraw_volunteer(session, vol_id, date(2027, 2, 6), clock=clock)
    assert client.get("/api/v1/me").status_code == 200
    assert "签到成功" in _post(client, point_path).get_data(as_text=True)
    clock.advance(days=1)
    assert client.get("/api/v1/me").status_code == 401


def test_the_page_says_where_the_volunteer_stands_between_scans(client, auth, clock, point_path):
    """Scanned again a moment after checking in, the page says "on patrol" instead of offering a
    签退 button that would only answer "刚刚已经扫过了"; after a check-out it names the last patrol
    above 签到, so a scan "to make sure" is not mistaken for nothing."""
    auth.volunteer()
    assert "签到成功" in _post(client, point_path, lat="31.0689", lon="121.5049").get_data(as_text=True)
    clock.advance(seconds=20)
    page = client.get(point_path).get_data(as_text=True)
    assert "刚刚签到，正在巡逻中" in page and "60 秒内再扫码不会签退" in page
    assert 'data-arm-ms="40000"' in page and "已签到：18:02" in page   # the page may stay open for the night
    # The duplicate answer itself says the patrol goes on.
    dup = client.post(point_path, data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
                                        "nonce": "again"}).get_data(as_text=True)
    assert "还没有签退：您 18:02 签到，仍在巡逻中" in dup
    clock.advance(seconds=50)
    page = client.get(point_path).get_data(as_text=True)
    assert 'id="scan-form"' in page and "刚刚签到" not in page and "data-arm-ms" not in page
    clock.now = from_local(datetime(2027, 2, 5, 21, 5))
    assert "签退成功" in _post(client, point_path, lat="31.0689", lon="121.5049").get_data(as_text=True)
    page = client.get(point_path).get_data(as_text=True)
    assert "21:05 已在“周浦塘桥路口”签退，本次计 2.9 小时" in page and "再次签到将开始新的一次巡逻" in page
    clock.advance(hours=3)
    assert "已在“周浦塘桥路口”签退" not in client.get(point_path).get_data(as_text=True)


def test_a_poster_that_does_not_work_says_nothing_was_recorded_and_whom_to_tell(client, auth, clock, point_path, session):
    from services.settings import OFFICE_PHONE, set_setting

    set_setting(session, OFFICE_PHONE, "021-64000000", by="test")
    auth.volunteer()
    page = client.get("/p/1.1.AAAAAAAAAAAAAAAAAAAAAA")
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and "请拍下这张二维码海报，告诉平安办" in html and 'href="tel:021-64000000"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(point_path).get_data(as_text=True)).group(1)
    resp = client.post("/p/1.1.AAAAAAAAAAAAAAAAAAAAAA", data={"csrf_token": token, "nonce": "x"})
    assert "本次扫码没有记录签到或签退" in resp.get_data(as_text=True)
