"""End to end in a real browser: a volunteer confirms a shift, asks for leave and takes it back on
/me (plain forms, no script), and the office hears about the leave."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from extensions import db
from models import Assignment, Event, Message, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.signin import issue_login_link
from services.users import create_user
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import MovableClock, live_server


def test_confirm_and_leave_on_the_me_page(app):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    clock = MovableClock(from_local(datetime(2027, 2, 5, 12)))
    app.config["CLOCK"] = clock
    try:
        with live_server(app) as base:
            with app.app_context():
                event = Event(name="元宵节", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 5))
                point = PatrolPoint(code="P9", name="浦锦路口", radius_m=100)
                vol = Volunteer(name="钱二", phone="13700000002", team="塘口居委", joined_on=date(2026, 1, 1))
                db.session.add_all([event, point, vol])
                db.session.flush()
                shift = Shift(event_id=event.id, point_id=point.id, capacity=5,
                              starts_at=from_local(datetime(2027, 2, 5, 19)), ends_at=from_local(datetime(2027, 2, 5, 22)))
                db.session.add(shift)
                db.session.flush()
                db.session.add(Assignment(shift_id=shift.id, volunteer_id=vol.id))
                create_user(db.session, "coord", "password-123", "coordinator")
                db.session.commit()
                link = issue_login_link(db.session, vol.id, base_url=base, created_by="test").url

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                page = browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True,
                                           locale="zh-CN").new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(link)
                page.get_by_role("button", name="确认登录").click()
                page.wait_for_url(base + "/me")
                card = page.locator("#shifts")
                assert "02-05 19:00–22:00" in card.inner_text() and "已安排" in card.inner_text()

                card.get_by_role("button", name="确认").click()
                page.wait_for_selector("text=已确认参加")
                assert "已确认" in page.locator("#shifts .shift-status").inner_text()

                page.locator("#shifts").get_by_role("button", name="请假").click()
                page.wait_for_selector("text=已请假，平安办和队长会收到通知")
                assert page.locator("#shifts .shift-status").inner_text() == "已请假"

                page.locator("#shifts").get_by_role("button", name="撤销请假").click()
                page.wait_for_selector("text=已撤销请假")
                assert page.locator("#shifts .shift-status").inner_text() == "已确认"

                clock.advance(hours=7, minutes=5)  # 19:05: the shift has started
                page.goto(base + "/me")
                text = page.locator("#shifts").inner_text()
                assert "进行中" in text and "班次已开始" in text
                assert page.locator("#shifts").get_by_role("button").count() == 0
                browser.close()
            assert errors == []
    finally:
        app.config.pop("CLOCK", None)
    with app.app_context():
        titles = db.session.scalars(select(Message.title).where(Message.kind == "leave").order_by(Message.id)).all()
        # Leave and its take-back within minutes are one message to the office, showing where
        # things stand (review item 14: flipping must not flood the office).
        assert titles == ["撤销请假：钱二"]
