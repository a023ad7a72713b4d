"""End to end in a real browser (issue 12, items 4 and 5): a notice to "missing tonight" with the
count shown before sending, and an indicator drill-down exported and read back with openpyxl —
on a desktop (1366 × 768) and a Pixel 7. With SCREENSHOTS=1 the pages of docs/guide-zh.md are
captured into docs/screenshots/ (small PNGs, committed)."""
from __future__ import annotations

import os
from datetime import date, datetime
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from extensions import db
from models import Assignment, Attendance, Event, Message, MessageRecipient, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.review import add_adjustment
from services.users import create_user
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import MovableClock, live_server

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PIXEL_7 = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 1, "is_mobile": True, "has_touch": True,
           "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/131.0.0.0 Mobile Safari/537.36"}
NIGHT = date(2027, 2, 11)


def shot(page, name: str) -> None:
    """A guide screenshot, only when asked for (SCREENSHOTS=1): the files are committed, not rebuilt each run."""
    if os.environ.get("SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        small_png(page.screenshot(), SHOTS / f"{name}.png")


def small_png(data: bytes, path: Path) -> None:
    """A 64-colour palette PNG: a page screenshot stays legible at a fraction of the size."""
    from PIL import Image

    Image.open(BytesIO(data)).convert("RGB").quantize(colors=64).save(path, optimize=True)


def _seed() -> None:
    point = PatrolPoint(code="P1", name="浦锦路口", radius_m=100)
    other = PatrolPoint(code="P2", name="塘口公园", radius_m=100)
    event = Event(name="元宵节", starts_on=NIGHT, ends_on=NIGHT)
    vols = [Volunteer(name=n, phone=f"1370000{i:04d}", team=t, joined_on=date(2027, 1, 1))
            for i, (n, t) in enumerate((("赵一", "塘口居委"), ("钱二", "塘口居委"), ("孙三", "三林居委"),
                                        ("李四", "三林居委"), ("周五", "塘口居委")))]
    db.session.add_all([point, other, event, *vols])
    db.session.flush()
    s1 = Shift(event_id=event.id, point_id=point.id, capacity=5, starts_at=from_local(datetime(2027, 2, 11, 18)),
               ends_at=from_local(datetime(2027, 2, 11, 22)))
    s2 = Shift(event_id=event.id, point_id=other.id, capacity=5, starts_at=from_local(datetime(2027, 2, 11, 18)),
               ends_at=from_local(datetime(2027, 2, 11, 22)))
    db.session.add_all([s1, s2])
    db.session.flush()
    for v, s in ((vols[0], s1), (vols[1], s1), (vols[2], s2), (vols[3], s2)):
        db.session.add(Assignment(shift_id=s.id, volunteer_id=v.id))
    db.session.add(Attendance(volunteer_id=vols[0].id, event_id=event.id, shift_id=s1.id, point_id=point.id,
                              check_in_at=from_local(datetime(2027, 2, 11, 17, 55)), work_date=NIGHT))
    create_user(db.session, "coord", "password-123", "coordinator")
    db.session.commit()
    add_adjustment(db.session, vols[4].id, minutes=400, work_date=date(2027, 1, 20), reason="纸质记录补录", by_user_id=None)
    add_adjustment(db.session, vols[3].id, minutes=130, work_date=date(2027, 1, 20), reason="纸质记录补录", by_user_id=None)


def _login(page, base: str) -> None:
    page.goto(base + "/coord/login")
    page.fill("#username", "coord")
    page.fill("#password", "password-123")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(base + "/coord/")


@pytest.mark.parametrize("profile", ["desktop", "pixel7"])
def test_notice_to_missing_tonight_and_a_drilldown_export(app, profile, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 11, 18, 40)))
    try:
        with live_server(app) as base:
            with app.app_context():
                _seed()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                context = browser.new_context(locale="zh-CN", accept_downloads=True,
                                              **(DESKTOP if profile == "desktop" else PIXEL_7))
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                _login(page, base)

                # --- a notice to the people missing tonight, the count shown before sending ---
                page.goto(base + "/coord/notices/new")
                page.fill("#text", "各位好，今晚 18:00 的班次已经开始，请尽快到岗。")
                page.get_by_label("今晚缺岗：已安排、班次开始后仍未签到").check()
                shift_options = page.locator("select[name=shift_id] option").all_inner_texts()
                assert "2月11日 18:00–22:00 浦锦路口（元宵节）" in shift_options  # by date, time and point
                if profile == "pixel7":
                    shot(page, "notice-compose")
                page.get_by_role("button", name="预览并查看人数").click()
                count = page.locator("#recipient-count").inner_text()
                assert "今晚缺岗的志愿者" in count and "共 3 人" in count, count
                assert "【巡逻通知】" in page.locator(".phone-bubble").inner_text()
                if profile == "pixel7":
                    shot(page, "notice-preview")
                page.get_by_role("button", name="发送给 3 人").click()
                page.wait_for_selector("text=已发送 3 人，3 人未绑定任何渠道，只能在网页消息中看到")
                assert "尚未阅读" in page.content()
                if profile == "desktop":
                    shot(page, "notice-sent")

                # --- indicator 6: the people under the target, filtered by team, exported ---
                page.goto(base + "/coord/programme/indicator/6?year=2027")
                assert "<pre" not in page.content()
                page.select_option("#team", "三林居委")
                page.get_by_role("button", name="筛选").click()
                table = page.locator("#table table").last.inner_text()
                assert "李四" in table and "赵一" not in table
                if profile == "desktop":
                    shot(page, "indicator-6")
                with page.expect_download() as download:
                    page.get_by_role("link", name="导出 Excel").click()
                path = tmp_path / "drill.xlsx"
                download.value.save_as(path)
                rows = list(load_workbook(BytesIO(path.read_bytes())).active.iter_rows(values_only=True))
                assert rows[0][:5] == ("姓名", "居委", "手机", "已计时长（小时）", "还差（小时）")
                assert {r[0]: r[1:] for r in rows[1:]} == {"孙三": ("三林居委", "13700000002", 0, 6),
                                                            "李四": ("三林居委", "13700000003", 2.1, 3.9)}

                page.goto(base + "/coord/programme/?year=2027")
                assert page.locator("svg.hchart").count() >= 1  # the histogram (no closed patrol yet: no weekly chart)
                if profile == "pixel7":
                    page.locator("svg.hchart").first.scroll_into_view_if_needed()
                    shot(page, "indicators-phone")
                else:
                    shot(page, "indicators")
                    page.goto(base + "/coord/events/")
                    shot(page, "campaigns")
                    page.get_by_role("link", name="元宵节").first.click()
                    shot(page, "campaign-shifts")
                    page.locator("a[href*=\"/coord/events/shifts/\"]").first.click()
                    shot(page, "shift")
                    page.goto(base + "/coord/points/")
                    shot(page, "points")
                    page.goto(base + "/coord/board/")
                    shot(page, "board")
                    page.goto(base + "/coord/attendance/")
                    shot(page, "attendance")
                    page.goto(base + "/coord/programme/settings?year=2027")
                    shot(page, "settings")
                browser.close()
            assert errors == []
    finally:
        app.config.pop("CLOCK", None)
    with app.app_context():
        message = db.session.scalar(select(Message).where(Message.kind == "notice"))
        names = db.session.scalars(select(Volunteer.name).join(MessageRecipient, MessageRecipient.volunteer_id == Volunteer.id)
                                   .where(MessageRecipient.message_id == message.id)).all()
        assert sorted(names) == ["孙三", "李四", "钱二"]


def test_the_notice_and_indicator_pages_pass_axe_and_fit_360px(app):
    """axe-core: no serious or critical violation on the pages of items 4 and 5; at 360 px their
    content does not overflow sideways (the menu is the layout's own test)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.axe import axe_path, serious_violations

    axe_path()
    executable = chromium_path()
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 11, 18, 40)))
    try:
        with live_server(app) as base:
            with app.app_context():
                _seed()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                page = browser.new_context(locale="zh-CN", bypass_csp=True,
                                           viewport={"width": 360, "height": 740}).new_page()
                _login(page, base)
                found: dict[str, list[str]] = {}
                wide: dict[str, int] = {}

                def check(name: str) -> None:
                    found[name] = serious_violations(page)
                    width = page.evaluate("Math.max(...[...document.querySelectorAll('main, .card, table')]"
                                          ".map(e => e.getBoundingClientRect().right))")
                    if width > 361:
                        wide[name] = width

                page.goto(base + "/coord/notices/new")
                check("compose")
                page.fill("#text", "今晚加强巡逻")
                page.get_by_label("今晚缺岗：已安排、班次开始后仍未签到").check()
                page.get_by_role("button", name="预览并查看人数").click()
                check("preview")
                page.get_by_role("button", name="发送给 3 人").click()
                page.wait_for_selector("#summary")
                check("sent")
                for number in (4, 6, 10, 12):
                    page.goto(base + f"/coord/programme/indicator/{number}?year=2027")
                    check(f"indicator {number}")
                page.goto(base + "/coord/programme/?year=2027")
                check("indicators")
                page.goto(base + "/coord/programme/settings?year=2027")
                check("settings")
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
    assert sorted(k for k, v in found.items() if v) == [], {k: v for k, v in found.items() if v}
    assert wide == {}
