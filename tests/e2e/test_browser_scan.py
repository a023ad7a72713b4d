"""End to end, as a person would: decode the poster's QR, sign in on a "phone", check in, come
back later, check out, and read the credited hours from /api/v1/me."""
from __future__ import annotations

import json
from datetime import date, datetime

from PIL import Image

from extensions import db
from models import Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.signin import issue_login_link
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path, wait_for_location
from tests.system_deps import decode_qr as decode, needs_chromium, needs_zbar
from tests.live import MovableClock, live_server

POINT = (31.0689, 121.5049)


@needs_chromium
@needs_zbar
def test_qr_to_hours_in_a_real_browser(app, runner, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    clock = MovableClock(from_local(datetime(2027, 2, 5, 18, 2)))
    app.config["CLOCK"] = clock
    original_base = app.config["PUBLIC_BASE_URL"]
    try:
        with live_server(app) as base:
            app.config["PUBLIC_BASE_URL"] = base
            with app.app_context():
                event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
                point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=POINT[0], lon=POINT[1], radius_m=150)
                vol = Volunteer(name="赵六", phone="13900000006", vest_no="PJ-0006", joined_on=date(2026, 1, 1))
                db.session.add_all([event, point, vol])
                db.session.flush()
                db.session.add(Shift(event_id=event.id, point_id=point.id, capacity=10,
                                     starts_at=from_local(datetime(2027, 2, 5, 18)),
                                     ends_at=from_local(datetime(2027, 2, 5, 21))))
                db.session.commit()
                link = issue_login_link(db.session, vol.id, base_url=base, created_by="test").url

            png = tmp_path / "qr.png"
            assert runner.invoke(args=["points", "qr", "PJ01", "-o", str(png)]).exit_code == 0
            with Image.open(png) as img:
                scan_url = decode(img)[0].data.decode()
            assert scan_url.startswith(base + "/p/")

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                phone = browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True,
                                            geolocation={"latitude": POINT[0], "longitude": POINT[1], "accuracy": 15},
                                            permissions=["geolocation"], locale="zh-CN")
                page = phone.new_page()
                page.goto(link)
                page.get_by_role("button", name="确认登录").click()
                page.wait_for_url(base + "/me")

                page.goto(scan_url)
                wait_for_location(page)
                page.get_by_role("button", name="签到").click()
                page.wait_for_selector("text=签到成功")
                assert "18:02" in page.content()
                page.screenshot(path=str(tmp_path / "checked-in.png"))

                clock.advance(hours=2, minutes=30)
                page.goto(scan_url)
                page.get_by_role("button", name="签退").click()
                page.wait_for_selector("text=现在结束巡逻？")  # 20:32, before the 21:00 end: asked first
                page.get_by_role("button", name="是，结束巡逻并签退").click()
                page.wait_for_selector("text=签退成功")
                text = page.inner_text("main")
                assert "本次计 2.5 小时" in text and "今年累计 2.5 小时" in text

                page.goto(base + "/api/v1/me")
                me = json.loads(page.inner_text("body"))
                browser.close()
    finally:
        app.config["PUBLIC_BASE_URL"] = original_base
        app.config.pop("CLOCK", None)

    assert me["hours_total"] == 2.5 and me["hours_verified"] == 2.5 and me["open_attendance"] is None
    with app.app_context():
        from models import Attendance
        att = db.session.query(Attendance).one()
        assert att.flags == "" and att.review_status == "none"  # the location was sent and inside the fence
