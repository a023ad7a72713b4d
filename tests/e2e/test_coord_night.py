"""The coordinator web on a desktop (1366 × 768) and a Pixel 7 (412 × 915, touch): the menu that
collapses on a phone, tonight's board with its missing list, a bulk approval, no page scrolling
sideways at 360 px, and axe-core on the main pages."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import select

from extensions import db
from models import (Assignment, Attendance, Event, Message, MessageRecipient, PatrolPoint, ScanRecord, Shift,
                    Volunteer)
from services.clock import from_local
from services.users import create_user
from tests.e2e.axe import axe_path, serious_violations
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import MovableClock, live_server

POINT = (31.0689, 121.5049)
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PIXEL_7 = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625, "is_mobile": True,
           "has_touch": True}
PROFILES = {"desktop": DESKTOP, "pixel7": PIXEL_7}
SKIP_SUFFIXES = (".pdf", ".png", ".csv", ".xlsx")


def seed() -> dict:
    """A key-date night at 18:30: 4 assigned at P1 (18:00–21:00), one in, one left without a location,
    two missing; a walk-in; a long team name and a long event name to stress narrow screens."""
    event = Event(name="2027 年春节烟花爆竹安全管控（除夕至元宵）", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
    p1 = PatrolPoint(code="PJ01", name="周浦镇塘桥路与年家浜路交叉口东北角", lat=POINT[0], lon=POINT[1], radius_m=100,
                     address="上海市浦东新区周浦镇塘桥路 1 号")
    p2 = PatrolPoint(code="PJ02", name="芦胜村委会门口", lat=POINT[0] + 0.01, lon=POINT[1], radius_m=150)
    db.session.add_all([event, p1, p2])
    db.session.flush()
    shift = Shift(event_id=event.id, point_id=p1.id, capacity=6, starts_at=from_local(datetime(2027, 2, 5, 18)),
                  ends_at=from_local(datetime(2027, 2, 5, 21)), note="穿好马甲，带手电")
    db.session.add(shift)
    db.session.flush()
    teams = ["浦锦街道丰顺居民委员会第三网格", "塘口居委", "芦胜居委", "丰顺居委", "塘口居委"]
    vols = []
    for i, team in enumerate(teams):
        v = Volunteer(name=f"志愿者{i + 1}号", phone=f"1390000001{i}", vest_no=f"PJ-{i + 1:04d}", team=team,
                      joined_on=date(2026, 1, 1))
        db.session.add(v)
        vols.append(v)
    db.session.flush()
    for v in vols[:4]:
        db.session.add(Assignment(shift_id=shift.id, volunteer_id=v.id))
    present = Attendance(volunteer_id=vols[0].id, event_id=event.id, shift_id=shift.id, point_id=p1.id, status="open",
                         check_in_at=from_local(datetime(2027, 2, 5, 17, 58)), work_date=date(2027, 2, 5),
                         review_status="flagged", flags="outside_geofence")
    gone = Attendance(volunteer_id=vols[1].id, event_id=event.id, shift_id=shift.id, point_id=p1.id, status="closed",
                      check_in_at=from_local(datetime(2027, 2, 5, 18, 0)),
                      check_out_at=from_local(datetime(2027, 2, 5, 18, 25)), work_date=date(2027, 2, 5),
                      review_status="flagged", flags="no_location", credited_minutes=25)
    walk_in = Attendance(volunteer_id=vols[4].id, event_id=event.id, shift_id=shift.id, point_id=p1.id, status="open",
                         check_in_at=from_local(datetime(2027, 2, 5, 18, 5)), work_date=date(2027, 2, 5),
                         review_status="flagged", flags="no_location", walk_in=True)
    db.session.add_all([present, gone, walk_in])
    db.session.flush()
    db.session.add(ScanRecord(volunteer_id=vols[0].id, point_id=p1.id, shift_id=shift.id, attendance_id=present.id,
                              scanned_at=present.check_in_at, action="check_in", code="ok",
                              lat=POINT[0] + 160 / 111_195, lon=POINT[1], accuracy_m=30, distance_m=160))
    msg = Message(kind="notice", title="巡逻通知", body="今晚 18:00 塘桥路口集合，请穿好马甲。", audience="全体在册志愿者")
    db.session.add(msg)
    db.session.flush()
    db.session.add_all([MessageRecipient(message_id=msg.id, volunteer_id=v.id) for v in vols])
    db.session.commit()
    create_user(db.session, "admin", "password-123", "admin")
    return {"volunteer_id": vols[0].id, "point_id": p1.id, "event_id": event.id, "shift_id": shift.id,
            "message_id": msg.id, "missing": [vols[2].name, vols[3].name],
            "no_location": [gone.id, walk_in.id], "flagged": present.id}


@pytest.fixture
def night(app):
    pytest.importorskip("playwright")
    executable = chromium_path()
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 5, 18, 30)))
    try:
        with live_server(app) as base:
            with app.app_context():
                ids = seed()
            from playwright.sync_api import sync_playwright
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                yield {"base": base, "ids": ids, "browser": browser, "playwright": p}
                browser.close()
    finally:
        app.config.pop("CLOCK", None)


def signed_in(night, profile: dict, locale: str = "zh-CN", **extra):
    context = night["browser"].new_context(locale=locale, extra_http_headers={"Accept-Language": locale}, **profile,
                                           **extra)
    page = context.new_page()
    page.goto(night["base"] + "/coord/login")
    page.fill("#username", "admin")
    page.fill("#password", "password-123")
    with page.expect_navigation():
        page.locator("form button[type=submit]").first.click()
    return page


def coordinator_pages(app, ids: dict) -> list[str]:
    """Every coordinator GET page of the URL map that answers HTML, with the seeded ids filled in."""
    values = dict(ids, number=1, kind="roster")
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("coord") or "GET" not in rule.methods or rule.rule.endswith(SKIP_SUFFIXES):
            continue
        if rule.endpoint in ("coord_auth.login", "coord_programme.document_file", "coord_board.rows"):
            continue
        if any(arg not in values for arg in rule.arguments):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{arg}>", str(values[arg]), path)
        urls.append(path)
    urls += [f"/coord/programme/indicator/{n}" for n in range(2, 15)]
    return sorted(set(urls))


@pytest.mark.parametrize("profile", ["desktop", "pixel7"])
def test_the_menu_collapses_on_a_phone(night, profile):
    page = signed_in(night, PROFILES[profile])
    page.goto(night["base"] + "/coord/")
    wide, menu = page.locator("nav.nav-wide"), page.locator("details.menu")
    if profile == "desktop":
        assert wide.is_visible() and not menu.is_visible()
        # no link breaks inside a word: each is one line
        assert page.evaluate("""() => [...document.querySelectorAll('nav.nav-wide a, nav.nav-wide button')]
            .every(a => a.getClientRects().length === 1 && a.getBoundingClientRect().height < 60)""")
        assert "3" in wide.get_by_role("link", name=re.compile("待核对")).inner_text()  # the waiting count
    else:
        assert not wide.is_visible() and menu.is_visible()
        summary = menu.locator("summary")
        assert summary.bounding_box()["height"] >= 44
        board_link = menu.get_by_role("link", name="今晚")
        assert not board_link.is_visible()
        closed_at = summary.bounding_box()
        summary.tap()
        assert board_link.is_visible()
        opened_at = summary.bounding_box()   # the button stays under the finger: it used to jump
        assert abs(opened_at["x"] - closed_at["x"]) < 2 and abs(opened_at["y"] - closed_at["y"]) < 2
        assert menu.locator("nav").bounding_box()["x"] >= 0   # the list is on the screen
        summary.tap()                        # so the same tap closes it again
        assert not board_link.is_visible()
        summary.tap()
        with page.expect_navigation():
            board_link.tap()
        assert page.url.endswith("/coord/board/")
    page.context.close()


@pytest.mark.parametrize("profile", ["desktop", "pixel7"])
def test_the_board_shows_who_is_missing_first(night, profile, app):
    page = signed_in(night, PROFILES[profile])
    page.goto(night["base"] + "/coord/board/")
    missing = page.locator("#missing")
    assert missing.is_visible()
    names = missing.locator("tr.missing-person strong").all_inner_texts()
    assert sorted(names) == sorted(night["ids"]["missing"])
    # the missing list comes before the per-shift counts
    assert missing.bounding_box()["y"] < page.locator("table.shift-fill").first.bounding_box()["y"]
    tel = missing.locator("a.tel").first
    assert tel.get_attribute("href") in ("tel:13900000012", "tel:13900000013")
    assert page.locator("#missing-count").inner_text() == "2"
    with page.expect_navigation():
        missing.get_by_role("button", name="提醒").first.click()
    # Nobody here has Telegram or SMS: the reminder is only in the web inbox, and the board says so
    # (at the top and on the row the page comes back to), not "sent".
    assert "提醒只进了网页消息" in page.locator(".flash").inner_text()
    assert "已提醒 18:30" in page.locator("#missing").inner_text()
    assert "仅网页消息，请打电话" in page.locator("#missing").inner_text()
    if profile == "pixel7":
        # refreshed in place: someone arrives, the list updates without a reload and keeps the scroll
        page.evaluate("window.__noReload = true; window.scrollTo(0, 300)")
        scrolled = page.evaluate("window.scrollY")
        with app.app_context():
            vid = db.session.scalar(select(Volunteer.id).where(Volunteer.name == night["ids"]["missing"][1]))
            db.session.add(Attendance(volunteer_id=vid, event_id=night["ids"]["event_id"], shift_id=night["ids"]["shift_id"],
                                      point_id=night["ids"]["point_id"], status="open",
                                      check_in_at=from_local(datetime(2027, 2, 5, 18, 29)), work_date=date(2027, 2, 5)))
            db.session.commit()
        from playwright.sync_api import expect
        expect(page.locator("#missing-count")).to_have_text("1", timeout=20000)  # the page's CSP forbids eval
        assert page.evaluate("window.__noReload") is True
        assert page.evaluate("window.scrollY") == scrolled
    page.context.close()


@pytest.mark.parametrize("profile", ["desktop", "pixel7"])
def test_a_bulk_approval_of_no_location_records(night, profile, app):
    page = signed_in(night, PROFILES[profile])
    page.goto(night["base"] + "/coord/attendance/review")
    assert "距点位 160 米，定位精度 30 米" in page.locator(f"#att-{night['ids']['flagged']}").inner_text()
    page.select_option("#q-flag", "no_location")
    with page.expect_navigation():
        page.get_by_role("button", name="筛选").click()
    assert page.locator("article.review-card").count() == 2
    approve = page.locator("#approve-all")
    assert approve.bounding_box()["height"] >= 48
    # Deciding a whole page at once asks first: one stray tap must not approve the queue.
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    with page.expect_navigation():
        approve.click()
    assert asked and "全部 2 条" in asked[0]
    assert "已审核 2 条" in page.locator(".flash").inner_text()
    with app.app_context():
        statuses = {a.id: a.review_status for a in db.session.scalars(select(Attendance))}
    assert [statuses[i] for i in night["ids"]["no_location"]] == ["approved", "approved"]  # one still open
    assert statuses[night["ids"]["flagged"]] == "flagged"
    page.context.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_no_coordinator_page_scrolls_sideways_at_360_px(night, app, locale):
    page = signed_in(night, {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
                     locale=locale)
    urls = coordinator_pages(app, night["ids"])
    assert len(urls) >= 25, urls
    problems = []
    # nothing the page's CSP refuses (an inline script, style or handler) on any of them either
    page.on("console", lambda msg: problems.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    for url in urls:
        response = page.goto(night["base"] + url)
        assert response.status == 200, (url, response.status)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 360:
            culprits = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > 361)
                .slice(0, 4).map(e => e.tagName.toLowerCase() + '.' + e.className + ' "' + (e.innerText || '').slice(0, 20) + '"')""")
            problems.append(f"{url}: scrollWidth {width}: {culprits}")
        # and the links tapped most on a patrol night are big enough for a thumb
        small = page.evaluate("""() => [...document.querySelectorAll('.pager a, .filter-links a, a.tel, td a.bad, details.card > summary')]
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
            .slice(0, 3).map(e => (e.innerText || '').trim().slice(0, 20))""")
        if small:
            problems.append(f"{url}: tap targets under 44 px: {small}")
    page.context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("profile", ["desktop", "pixel7"])
def test_main_coordinator_pages_pass_axe(night, profile):
    axe_path()
    page = signed_in(night, PROFILES[profile], bypass_csp=True)
    ids = night["ids"]
    problems = []
    for url in ["/coord/", "/coord/board/", "/coord/attendance/review", "/coord/attendance/",
                "/coord/volunteers/", f"/coord/volunteers/{ids['volunteer_id']}", "/coord/events/",
                f"/coord/events/{ids['event_id']}", f"/coord/events/shifts/{ids['shift_id']}", "/coord/points/",
                "/coord/notices/"]:
        page.goto(night["base"] + url)
        problems += [f"{url}: {line}" for line in serious_violations(page)]
    page.context.close()
    assert not problems, "\n".join(problems)
