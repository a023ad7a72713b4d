"""Every volunteer page, in Chinese and in English, on a phone: no serious or critical axe-core
violation, touch targets at least 44 px, nothing cut off or scrolling sideways at 200 % text."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from extensions import db
from models import Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from keys import code_signer
from services.messaging import Audience, send_notice
from services.signin import issue_login_link
from services.surveys import create_round
from services.qr import scan_url
from tests.e2e.axe import axe_path, serious_violations
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path, wait_for_location
from tests.live import MovableClock, live_server

POINT = (31.0689, 121.5049)
SMS_ENV = {"SMS_PROVIDER": "aliyun", "ALIBABA_CLOUD_ACCESS_KEY_ID": "a11y", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "a11y"}
SMS_SETTINGS = {"sms_enabled": "1", "sms_signature": "浦锦平安办", "sms_tpl_signin_code_code": "SMS_900",
                "sms_tpl_signin_code_text": "您的平安马甲登录验证码：${code}，5分钟内有效。"}


def _seed(base: str):
    event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
    point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=POINT[0], lon=POINT[1], radius_m=150)
    vol = Volunteer(name="赵六", phone="13900000006", vest_no="PJ-0006", team="塘桥居委", joined_on=date(2026, 1, 1))
    db.session.add_all([event, point, vol])
    db.session.flush()
    db.session.add(Shift(event_id=event.id, point_id=point.id, capacity=10,
                         starts_at=from_local(datetime(2027, 2, 5, 18)), ends_at=from_local(datetime(2027, 2, 5, 21))))
    from services.settings import SELF_SERVICE_SIGNIN, set_setting
    set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="test")  # the scan page's PIN form is checked too
    from services.channels import settings as cs
    for key, value in SMS_SETTINGS.items():  # and 用短信验证码登录 with its two steps
        cs.put(db.session, key, value, by="test")
    survey = create_round(db.session, "2027 春节满意度调查", opens_at=datetime(2027, 2, 1, tzinfo=timezone.utc))
    db.session.commit()
    send_notice(db.session, text="今晚 18:00 塘桥路口集合，请穿好马甲。", audience=Audience("all"), nonce="a11y",
                created_by_user_id=None)
    db.session.commit()
    links = [issue_login_link(db.session, vol.id, base_url=base, created_by="test").url for _ in range(2)]
    return {"scan": scan_url(base, code_signer(), point), "survey": f"{base}/me/survey/{survey.id}", "links": links}


def _check(page, name: str, problems: list[str]) -> None:
    for line in serious_violations(page):
        problems.append(f"{name}: {line}")
    small = page.evaluate("""() => [...document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea, label.choice')]
        .filter(el => el.offsetParent !== null && !el.closest('p, li, td, .facts, .flash') && !(el.tagName === 'INPUT' && el.closest('label.choice')))
        .map(el => [el.tagName + ' ' + (el.innerText || el.name || '').slice(0, 20), el.getBoundingClientRect().height])
        .filter(([, h]) => h < 44)""")
    problems.extend(f"{name}: touch target under 44 px: {label} ({h:.0f} px)" for label, h in small)
    # 200 % text size (the phone's large-text setting scales the root font): nothing scrolls sideways
    wide = page.evaluate("""(limit) => { const root = document.documentElement; const before = root.style.fontSize;
        root.style.fontSize = '200%';
        const out = root.scrollWidth > limit ? [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > limit + 1)
            .map(e => e.tagName.toLowerCase() + '.' + e.className + ' "' + (e.innerText || '').slice(0, 20) + '"') : [];
        root.style.fontSize = before; return out; }""", page.viewport_size["width"])
    if wide:
        problems.append(f"{name}: at 200 % text these stick out sideways: {wide[:5]}")


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_volunteer_pages_pass_axe_and_have_large_targets(app, locale):
    from playwright.sync_api import sync_playwright

    executable, _axe = chromium_path(), axe_path()
    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 5, 18, 5)))
    app.config.update(SMS_ENV)  # no sender runs: the text just waits in the outbox
    problems: list[str] = []
    try:
        with live_server(app) as base:
            with app.app_context():
                urls = _seed(base)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                context = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True,
                                              locale=locale, extra_http_headers={"Accept-Language": locale},
                                              geolocation={"latitude": POINT[0], "longitude": POINT[1], "accuracy": 15},
                                              permissions=["geolocation"], bypass_csp=True)
                page = context.new_page()
                page.goto(base + "/signin/sms")
                _check(page, "sms sign-in, the number", problems)
                page.fill("#phone", "13900000006")
                with page.expect_navigation():
                    page.locator("form button[type=submit]").first.click()
                page.wait_for_selector("#code-sent")
                _check(page, "sms sign-in, the code", problems)
                for name, url in [("home", base + "/"), ("signin", base + "/signin"),
                                  ("scan, not signed in", urls["scan"]), ("refused code", base + "/p/1.1.forged"),
                                  ("offline shell", base + "/scan-offline"), ("sign-in link", urls["links"][0])]:
                    page.goto(url)
                    _check(page, name, problems)
                with page.expect_navigation():
                    page.locator("form button[type=submit]").first.click()
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                for name, url in [("me", base + "/me"), ("inbox", base + "/me/inbox"), ("survey", urls["survey"]),
                                  ("scan", urls["scan"])]:
                    requests.clear()
                    page.goto(url)
                    _check(page, name, problems)
                # the scan page on a weak signal: small, and nothing fetched from anywhere else
                transferred = page.evaluate("""() => performance.getEntriesByType('navigation').concat(
                    performance.getEntriesByType('resource')).reduce((n, e) => n + (e.encodedBodySize || 0), 0)""")
                assert 0 < transferred <= 30 * 1024, transferred
                assert requests and all(u.startswith(base) for u in requests), requests
                wait_for_location(page)
                page.locator("form button[type=submit]").first.click()
                page.wait_for_load_state()
                _check(page, "scan result", problems)
                page.goto(urls["links"][0])
                _check(page, "used link", problems)
                browser.close()
    finally:
        app.config.pop("CLOCK", None)
        for key in SMS_ENV:
            app.config.pop(key, None)
    assert not problems, "\n".join(problems)
