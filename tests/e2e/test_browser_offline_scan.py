"""Scanning on a dead signal, on a phone: the network cut off for a check-out keeps the scan on the
phone (amber, never green) with or without a service worker; when the connection returns it is
sent, recorded exactly once with the phone's and the server's time, and flagged when late; a scan
kept longer than OFFLINE_SCAN_MAX_DELAY is refused with a clear message."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from extensions import db

from keys import code_signer
from models import Attendance, Event, PatrolPoint, ScanRecord, Shift, Volunteer
from services.clock import from_local
from services.qr import scan_url
from services.signin import issue_login_link
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path, wait_for_location
from tests.live import MovableClock, live_server

POINT = (31.0689, 121.5049)
PHONE_360 = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def _seed(base):
    event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
    point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=POINT[0], lon=POINT[1], radius_m=150)
    vol = Volunteer(name="赵六", phone="13900000006", joined_on=date(2026, 1, 1))
    db.session.add_all([event, point, vol])
    db.session.flush()
    db.session.add(Shift(event_id=event.id, point_id=point.id, capacity=10,
                         starts_at=from_local(datetime(2027, 2, 5, 18)), ends_at=from_local(datetime(2027, 2, 5, 21))))
    db.session.commit()
    return issue_login_link(db.session, vol.id, base_url=base, created_by="test").url, scan_url(base, code_signer(), point)


def _phone(browser, workers: str):
    return browser.new_context(**PHONE_360, locale="zh-CN", timezone_id="Asia/Shanghai", service_workers=workers, permissions=["geolocation"],
                               geolocation={"latitude": POINT[0], "longitude": POINT[1], "accuracy": 15})


def _at(page, clock: MovableClock, when: datetime) -> None:
    """The phone's clock and the server's, both at `when` (Shanghai time)."""
    clock.now = from_local(when)
    page.clock.set_fixed_time(clock.now)


def _sign_in_and_check_in(page, clock, link, url):
    _at(page, clock, datetime(2027, 2, 5, 18, 0))
    page.goto(link)
    page.get_by_role("button", name="确认登录").click()
    page.wait_for_load_state()
    page.goto(url)
    page.get_by_role("button", name="签到").click()
    page.wait_for_selector("text=签到成功")


@pytest.mark.parametrize("workers", ["block", "allow"])
def test_a_check_out_without_signal_is_kept_then_sent_once_late_and_flagged(app, workers):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    clock = MovableClock(from_local(datetime(2027, 2, 5, 18, 0)))
    app.config["CLOCK"] = clock
    try:
        with live_server(app) as base:
            with app.app_context():
                link, url = _seed(base)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                phone = _phone(browser, workers)
                page = phone.new_page()
                _sign_in_and_check_in(page, clock, link, url)

                _at(page, clock, datetime(2027, 2, 5, 20, 0))
                page.goto(url)
                if workers == "allow":
                    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null",
                                           timeout=10000)
                else:
                    assert page.evaluate("!navigator.serviceWorker || navigator.serviceWorker.controller === null")
                wait_for_location(page)
                phone.set_offline(True)
                # A kept check-out is sent as confirmed later, so the phone asks now; "cancel" keeps nothing.
                asked: list[str] = []
                page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
                page.get_by_role("button", name="签退").click()
                page.wait_for_timeout(300)
                assert asked and "现在结束巡逻？" in asked[0]
                assert page.locator("#offline-box").is_hidden()
                page.once("dialog", lambda d: d.accept())
                page.get_by_role("button", name="签退").click()
                state = page.locator("#offline-state")
                expect(state).to_contain_text("已保存，联网后自动提交")
                assert "state-wait" in state.get_attribute("class")  # amber, never green
                expect(page.locator("#offline-list")).to_contain_text("20:00 · 签退 · 周浦塘桥路口 · 等待联网提交")
                assert "签退成功" not in page.inner_text("main")
                if workers == "allow":
                    # the poster scanned again with no signal: the cached shell opens and lists the scan
                    page.goto(url)
                    expect(page.locator("h1")).to_have_text("现在没有网络")
                    expect(page.locator("#offline-list")).to_contain_text("等待联网提交")
                with app.app_context():
                    assert db.session.scalar(select(Attendance)).status == "open"

                _at(page, clock, datetime(2027, 2, 5, 20, 30))  # the signal returns half an hour later
                phone.set_offline(False)
                expect(page.locator("#offline-list")).to_contain_text("已提交并签退", timeout=15000)
                expect(state).to_have_text("手机上保存的扫码都已提交")
                page.reload()  # the next page load sends nothing again
                page.wait_for_timeout(500)
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
    with app.app_context():
        att = db.session.scalar(select(Attendance))
        assert att.status == "closed" and att.check_out_at == from_local(datetime(2027, 2, 5, 20, 0))
        assert att.credited_minutes == 120 and "offline_late" in att.flag_list and att.review_status == "flagged"
        outs = db.session.scalars(select(ScanRecord).where(ScanRecord.action == "check_out")).all()
        assert len(outs) == 1 and outs[0].channel == "api"
        assert outs[0].client_time == from_local(datetime(2027, 2, 5, 20, 0))
        assert outs[0].received_at == from_local(datetime(2027, 2, 5, 20, 30))


def test_a_scan_kept_longer_than_the_bound_is_refused_with_a_clear_message(app):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    clock = MovableClock(from_local(datetime(2027, 2, 5, 18, 0)))
    app.config["CLOCK"] = clock
    try:
        with live_server(app) as base:
            with app.app_context():
                link, url = _seed(base)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                phone = _phone(browser, "block")
                page = phone.new_page()
                _sign_in_and_check_in(page, clock, link, url)
                _at(page, clock, datetime(2027, 2, 5, 19, 0))
                page.goto(url)
                wait_for_location(page)
                phone.set_offline(True)
                page.once("dialog", lambda d: d.accept())
                page.get_by_role("button", name="签退").click()
                expect(page.locator("#offline-state")).to_contain_text("已保存，联网后自动提交")

                _at(page, clock, datetime(2027, 2, 5, 21, 5))  # 2 h 5 min later
                phone.set_offline(False)
                item = page.locator("#offline-list li.bad")
                expect(item).to_contain_text("未计入：这次扫码是 02-05 19:00 保存在手机上的", timeout=15000)
                expect(item).to_contain_text("超过了 2 小时的期限")
                state = page.locator("#offline-state")
                expect(state).to_have_text("有扫码没有计入，请看下面的原因")
                assert "state-bad" in state.get_attribute("class")
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
    with app.app_context():
        assert db.session.scalar(select(Attendance)).status == "open"
        refused = db.session.scalars(select(ScanRecord).where(ScanRecord.code == "offline_too_old")).all()
        assert len(refused) == 1 and refused[0].client_time == from_local(datetime(2027, 2, 5, 19, 0))


def test_a_503_keeps_the_scan_and_the_next_page_load_sends_it(app):
    """The server answering 503 (or no answer) is not a success either: the scan waits on the phone,
    and a page opened later sends it, once."""
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    clock = MovableClock(from_local(datetime(2027, 2, 5, 18, 0)))
    app.config["CLOCK"] = clock
    try:
        with live_server(app) as base:
            with app.app_context():
                link, url = _seed(base)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                phone = _phone(browser, "block")
                page = phone.new_page()
                _at(page, clock, datetime(2027, 2, 5, 18, 0))
                page.goto(link)
                page.get_by_role("button", name="确认登录").click()
                page.wait_for_load_state()
                page.goto(url)
                wait_for_location(page)
                # the poster's form gets a 503 and the JSON API is unreachable too
                page.route("**/p/**", lambda route: route.fulfill(status=503, body="busy")
                           if route.request.method == "POST" else route.continue_())
                page.route("**/api/v1/scans", lambda route: route.abort("internetdisconnected"))
                page.get_by_role("button", name="签到").click()
                expect(page.locator("#offline-state")).to_contain_text("已保存，联网后自动提交")
                expect(page.locator("#offline-list")).to_contain_text("18:00 · 签到 · 周浦塘桥路口 · 等待联网提交")
                assert "签到成功" not in page.inner_text("main")
                # The button now says 签退, and waits out the debounce as it does online: a second
                # tap right away would only be a duplicate, and a later one an unasked check-out.
                expect(page.get_by_role("button", name="签退")).to_be_disabled()
                page.close()
                with app.app_context():
                    assert db.session.scalar(select(Attendance)) is None

                _at(phone.new_page(), clock, datetime(2027, 2, 5, 18, 1))
                later = phone.pages[-1]
                later.goto(base + "/me")  # any volunteer page sends what is waiting when it loads
                expect(later.locator("#offline-list")).to_contain_text("已提交并签到", timeout=15000)
                later.reload()
                later.wait_for_timeout(500)
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
    with app.app_context():
        att = db.session.scalar(select(Attendance))
        # sent a minute later: counts at the server's time (18:01), not flagged. Under CI load a
        # request the first page had in flight when it was closed can still reach the server before
        # the clock moves (18:00); either way it is one check-in, at most 2 minutes off, unflagged.
        assert att.status == "open"
        assert att.check_in_at in (from_local(datetime(2027, 2, 5, 18, 0)), from_local(datetime(2027, 2, 5, 18, 1)))
        assert att.flag_list == []
        ins = db.session.scalars(select(ScanRecord).where(ScanRecord.action == "check_in")).all()
        assert len(ins) == 1 and ins[0].client_time == from_local(datetime(2027, 2, 5, 18, 0))
