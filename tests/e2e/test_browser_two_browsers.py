"""WeChat's browser and the camera's browser are two phones to the server: a volunteer signed in
in WeChat who scans the poster with the camera gets, on the not-signed-in page, a way that works
in that browser within a minute (phone + PIN with a numeric keypad) and lands back on the scan."""
from __future__ import annotations

import time
from datetime import date, datetime

from extensions import db

from keys import code_signer
from models import Attendance, Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.qr import scan_url
from services.settings import SELF_SERVICE_SIGNIN, set_setting
from services.signin import issue_login_link, issue_pin
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path, wait_for_location
from tests.live import MovableClock, live_server
from tests.web.test_street_corner import WECHAT_UA

POINT = (31.0689, 121.5049)
PIXEL_7 = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625, "is_mobile": True,
           "has_touch": True}
IPHONE_SE = {"viewport": {"width": 375, "height": 667}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def test_signed_in_in_wechat_then_scanning_with_the_camera(app):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 5, 18, 5)))
    try:
        with live_server(app) as base:
            with app.app_context():
                event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
                point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=POINT[0], lon=POINT[1], radius_m=150)
                vol = Volunteer(name="赵六", phone="13900000006", joined_on=date(2026, 1, 1))
                db.session.add_all([event, point, vol])
                db.session.flush()
                db.session.add(Shift(event_id=event.id, point_id=point.id, capacity=10,
                                     starts_at=from_local(datetime(2027, 2, 5, 18)),
                                     ends_at=from_local(datetime(2027, 2, 5, 21))))
                db.session.commit()
                set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="admin")
                pin = issue_pin(db.session, vol.id).pin
                link = issue_login_link(db.session, vol.id, base_url=base, created_by="test").url
                url = scan_url(base, code_signer(), point)
            geo = {"permissions": ["geolocation"], "locale": "zh-CN",
                   "geolocation": {"latitude": POINT[0], "longitude": POINT[1], "accuracy": 15}}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                wechat = browser.new_context(**PIXEL_7, user_agent=WECHAT_UA, **geo)
                page = wechat.new_page()
                page.goto(link)
                expect(page.locator("main")).to_contain_text("同一个扫码工具")
                page.get_by_role("button", name="确认登录").click()
                page.wait_for_load_state()
                page.goto(url)
                expect(page.get_by_role("button", name="签到")).to_be_visible()

                camera = browser.new_context(**IPHONE_SE, **geo)  # another cookie jar: not signed in
                phone = camera.new_page()
                started = time.monotonic()
                phone.goto(url)
                main = phone.locator("main")
                expect(main).to_contain_text("这个浏览器还没有登录")
                expect(main).to_contain_text("微信“扫一扫”和手机相机打开的是两个不同的浏览器")
                assert phone.locator("#phone").get_attribute("inputmode") == "numeric"
                assert phone.locator("#pin").get_attribute("inputmode") == "numeric"
                phone.locator("#phone").fill("13900000006")
                phone.locator("#pin").fill(pin)
                phone.get_by_role("button", name="登录并回到签到").tap()
                phone.wait_for_url(url)
                wait_for_location(phone)
                phone.get_by_role("button", name="签到").tap()
                expect(phone.locator("h1")).to_have_text("签到成功")
                assert time.monotonic() - started < 60

                # the WeChat browser, scanning again while not signed in there, is told the same
                other = browser.new_context(**PIXEL_7, user_agent=WECHAT_UA, **geo).new_page()
                other.goto(url)
                expect(other.locator("main")).to_contain_text("您现在是用微信扫码")
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
    with app.app_context():
        assert db.session.query(Attendance).count() == 1
