"""The phone pages the README shows — the scan page, a scan kept offline (amber), my hours and the
survey — on a 360 × 640 Android in Chinese. Always checked; with SCREENSHOTS=1 (`make screenshots`)
the PNGs under docs/screenshots/ are rewritten from this run."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from extensions import db

from keys import code_signer
from models import Assignment, Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.checkin import scan
from services.clock import fixed_clock
from services.qr import point_token, scan_url
from services.signin import issue_login_link
from services.surveys import create_round
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path, wait_for_location
from tests.e2e.screenshots import shoot, wanted
from tests.live import MovableClock, live_server

POINT = (31.0689, 121.5049)
ANDROID_360 = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 1, "is_mobile": True,
               "has_touch": True}


def test_readme_phone_pages(app):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    clock = MovableClock(from_local(datetime(2027, 2, 5, 18, 2)))
    app.config["CLOCK"] = clock
    try:
        with live_server(app) as base:
            with app.app_context():
                event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
                point = PatrolPoint(code="PJ01", name="周浦塘桥路口", address="浦锦路 × 塘桥路",
                                    lat=POINT[0], lon=POINT[1], radius_m=150)
                vol = Volunteer(name="赵六", phone="13900000006", vest_no="PJ-0006", team="塘桥居委",
                                joined_on=date(2026, 1, 1))
                db.session.add_all([event, point, vol])
                db.session.flush()
                shift = Shift(event_id=event.id, point_id=point.id, capacity=10,
                              starts_at=from_local(datetime(2027, 2, 5, 18)), ends_at=from_local(datetime(2027, 2, 5, 21)))
                db.session.add(shift)
                db.session.flush()
                db.session.add(Assignment(shift_id=shift.id, volunteer_id=vol.id))
                yesterday = Shift(event_id=event.id, point_id=point.id, capacity=10,
                                  starts_at=from_local(datetime(2027, 2, 4, 18)), ends_at=from_local(datetime(2027, 2, 4, 21)))
                db.session.add(yesterday)
                db.session.commit()
                token = point_token(code_signer(), point)
                for at in (datetime(2027, 2, 4, 17, 55), datetime(2027, 2, 4, 21, 3)):  # last night's patrol
                    scan(db.session, vol.id, token, signer=code_signer(), clock=fixed_clock(from_local(at)))
                survey = create_round(db.session, "2027 春节满意度调查",
                                      opens_at=datetime.now().astimezone() - timedelta(days=1))
                link = issue_login_link(db.session, vol.id, base_url=base, created_by="test").url
                url = scan_url(base, code_signer(), point)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                phone = browser.new_context(**ANDROID_360, locale="zh-CN", timezone_id="Asia/Shanghai",
                                            service_workers="block", permissions=["geolocation"],
                                            geolocation={"latitude": POINT[0], "longitude": POINT[1], "accuracy": 15})
                page = phone.new_page()
                page.clock.set_fixed_time(clock.now)
                page.goto(link)
                page.get_by_role("button", name="确认登录").click()
                page.wait_for_load_state()

                page.goto(url)
                wait_for_location(page)
                expect(page.get_by_role("button", name="签到")).to_be_visible()
                shoot(page, "scan")

                phone.set_offline(True)
                page.get_by_role("button", name="签到").click()
                expect(page.locator("#offline-state")).to_contain_text("已保存，联网后自动提交")
                assert not page.locator("#offline-clear").is_visible()  # nothing to clear while waiting
                page.evaluate("window.scrollTo(0, 0)")
                page.locator("#offline-box").scroll_into_view_if_needed()
                shoot(page, "scan-offline")
                phone.set_offline(False)
                expect(page.locator("#offline-list")).to_contain_text("已提交并签到", timeout=15000)

                page.goto(base + "/me")
                expect(page.locator("h1")).to_have_text("赵六")
                shoot(page, "my-hours")

                page.goto(f"{base}/me/survey/{survey.id}")
                page.get_by_text("4 · 满意", exact=True).tap()
                assert page.locator("input[name=score][value='4']").is_checked()
                page.evaluate("document.activeElement.blur(); getSelection().removeAllRanges()")
                page.wait_for_timeout(1000)  # the phone's tap highlight fades
                shoot(page, "survey")
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
    if wanted():
        from tests.e2e.screenshots import OUT
        for name in ("scan", "scan-offline", "my-hours", "survey"):
            assert (OUT / f"{name}.png").stat().st_size < 60 * 1024, name
