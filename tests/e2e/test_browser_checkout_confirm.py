"""On a phone: a second scan five minutes after checking in asks before ending the patrol; "no"
keeps the patrol going, "yes" checks out and says what this patrol credited and the year's total."""
from __future__ import annotations

from datetime import date, datetime

from extensions import db
from keys import code_signer
from models import Attendance, Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.qr import scan_url
from services.signin import issue_login_link
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import MovableClock, live_server

POINT = (31.0689, 121.5049)
PIXEL_7 = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625, "is_mobile": True,
           "has_touch": True}


def test_an_early_second_scan_asks_first(app):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    clock = MovableClock(from_local(datetime(2027, 2, 5, 17, 58)))  # credit starts at 18:00
    app.config["CLOCK"] = clock
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
                link = issue_login_link(db.session, vol.id, base_url=base, created_by="test").url
                url = scan_url(base, code_signer(), point)

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                phone = browser.new_context(**PIXEL_7, locale="zh-CN", permissions=["geolocation"],
                                            geolocation={"latitude": POINT[0], "longitude": POINT[1], "accuracy": 15})
                page = phone.new_page()
                page.goto(link)
                page.get_by_role("button", name="确认登录").click()
                page.wait_for_load_state()
                page.goto(url)
                page.get_by_role("button", name="签到").click()
                page.wait_for_selector("text=签到成功")

                clock.advance(minutes=5)  # a second tap, five minutes later
                page.goto(url)
                page.get_by_role("button", name="签退").click()
                page.wait_for_selector("text=现在结束巡逻？")
                text = page.inner_text("main")
                assert "已经 5 分钟" in text and "0 小时" not in text and "21:00 结束" in text
                page.get_by_role("link", name="不，继续巡逻").tap()
                page.wait_for_selector("text=已签到")

                # An older hand's double tap on 签退 (two taps 0.3 s apart, same spot): the second
                # lands on "no" (moved to where 签退 was) or on a "yes" not yet armed, never ends it.
                button = page.get_by_role("button", name="签退")
                box = button.bounding_box()
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                page.touchscreen.tap(x, y)
                page.wait_for_timeout(300)
                page.touchscreen.tap(x, y)
                page.wait_for_timeout(1500)
                with app.app_context():
                    assert db.session.query(Attendance).one().status == "open"
                page.goto(url)
                page.get_by_role("button", name="签退").click()
                page.wait_for_selector("text=现在结束巡逻？")
                yes_button = page.get_by_role("button", name="是，结束巡逻并签退")
                assert yes_button.is_disabled()   # for its first second
                yes = yes_button.bounding_box()
                page.touchscreen.tap(yes["x"] + yes["width"] / 2, yes["y"] + yes["height"] / 2)
                page.wait_for_timeout(1500)   # past the second: the early tap must not have been kept for later
                with app.app_context():
                    assert db.session.query(Attendance).one().status == "open"   # a tap in its first second
                page.get_by_role("link", name="不，继续巡逻").tap()
                page.wait_for_selector("text=已签到")

                clock.advance(hours=2, minutes=59)  # 21:02, after the shift's end: no question
                page.goto(url)
                page.get_by_role("button", name="签退").click()
                page.wait_for_selector("text=签退成功")
                text = page.inner_text("main")
                assert "本次计 3.0 小时" in text and "今年累计 3.0 小时" in text
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
    with app.app_context():
        att = db.session.query(Attendance).one()
        assert att.status == "closed" and att.credited_minutes == 180
