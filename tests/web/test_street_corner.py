"""Sign-in at the street corner (issue 11 items 3 and 4): the not-signed-in scan page puts the ways
that work on the spot first, with numeric keypads, and comes straight back; a 429 says how long to
wait; error pages always offer the next step; WeChat's browser is told why it must sign in again."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest

from extensions import db, limiter

from keys import code_signer
from models import Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.qr import point_token
from services.settings import SELF_SERVICE_SIGNIN, set_setting
from services.signin import issue_login_link, issue_pin
from tests.conftest import csrf_from
from tests.live import MovableClock

WECHAT_UA = ("Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 "
             "Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) "
             "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")


@pytest.fixture
def corner(app, session):
    clk = MovableClock(from_local(datetime(2027, 2, 5, 17, 0)))
    app.config["CLOCK"] = clk
    event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
    point = PatrolPoint(code="PJ01", name="周浦塘桥路口", radius_m=150)
    vol = Volunteer(name="王五", phone="13900000005", joined_on=date(2026, 1, 1))
    session.add_all([event, point, vol])
    session.flush()
    session.add(Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18, 30)),
                      ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=10))
    session.commit()
    with app.test_request_context():
        path = "/p/" + point_token(code_signer(), point)
    yield {"clock": clk, "path": path, "vol_id": vol.id}
    app.config.pop("CLOCK", None)


def test_the_signin_page_puts_card_and_pin_first_with_numeric_keypads(app, client, corner):
    page = client.get(corner["path"]).get_data(as_text=True)
    assert "扫描志愿者卡上的二维码" in page and 'name="pin"' not in page  # PIN sign-in is off by default
    with app.app_context():
        set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="test")
    page = client.get(corner["path"]).get_data(as_text=True)
    assert page.index("用志愿者卡登录") < page.index("用手机号和登录 PIN") < page.index("其他方式")
    assert re.search(r'name="phone" inputmode="numeric"', page) and re.search(r'name="pin" inputmode="numeric"', page)
    assert f'name="next" value="{corner["path"]}"' in page
    assert "以后每次请用同一个扫码工具扫码" in page


def test_phone_and_pin_on_the_scan_page_go_straight_back_to_the_scan(app, client, corner):
    with app.app_context():
        set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="test")
        pin = issue_pin(db.session, corner["vol_id"]).pin
    token = csrf_from(client, corner["path"])
    resp = client.post("/signin", data={"csrf_token": token, "phone": "139 0000 0005", "pin": pin,
                                        "next": corner["path"]})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(corner["path"])
    assert "下一班 18:30 开始，18:00 起可签到" in client.get(corner["path"]).get_data(as_text=True)


def test_wechat_is_told_that_it_is_a_browser_of_its_own(client, corner):
    page = client.get(corner["path"], headers={"User-Agent": WECHAT_UA}).get_data(as_text=True)
    assert "您现在是用微信扫码" in page
    assert "您现在是用微信扫码" not in client.get(corner["path"]).get_data(as_text=True)


def test_error_pages_offer_the_next_step(app, client, corner):
    with app.app_context():
        link = issue_login_link(db.session, corner["vol_id"], base_url="http://pingan.test", created_by="t").url
    path = link.replace("http://pingan.test", "")
    client.post(path, data={"csrf_token": csrf_from(client, path)})
    other = app.test_client()
    used = other.get(path).get_data(as_text=True)
    assert "已经用过了" in used and "换一种方式登录" in used and "/me" in used
    bad = other.get("/card/1.1.forged").get_data(as_text=True)
    assert "换一种方式登录" in bad and "我的时长" in bad
    # signed in, but no shift open yet: when the next one opens, from the page and from the button
    page = client.get(corner["path"]).get_data(as_text=True)
    assert "下一班 18:30 开始，18:00 起可签到" in page
    corner["clock"].advance(minutes=55)  # 17:55: still closed
    refused = client.post(corner["path"], data={"csrf_token": csrf_from(client, "/me"), "nonce": "x"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "下一班 18:30 开始，18:00 起可签到" in text and "我的时长" in text


def test_a_429_says_how_long_to_wait(app, client, corner):
    limiter.reset()
    with app.app_context():
        set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="test")
    token = csrf_from(client, "/signin")
    codes = [client.post("/signin", data={"csrf_token": token, "phone": "13900000009", "pin": "000000"})
             for _ in range(6)]
    last = codes[-1]
    assert last.status_code == 429
    text = last.get_data(as_text=True)
    wait = re.search(r"尝试太频繁了，请 (\d+) 秒后再试", text)
    assert wait and 1 <= int(wait.group(1)) <= 61, text
    limiter.reset()
