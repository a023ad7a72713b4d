"""Security headers and a Content-Security-Policy without inline script (issue 10, item 12)."""
from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from extensions import db
from models import Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from tests.conftest import Auth
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import live_server

ROOT = Path(__file__).resolve().parents[2]
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:|\sstyle\s*=|<style", re.IGNORECASE)


def test_every_response_carries_the_security_headers(app, client, auth):
    for path in ("/", "/signin", "/coord/login", "/healthz", "/api/v1/points", "/no/such/page",
                 "/static/js/app.js", "/login/NoSuchToken"):
        resp = client.get(path)
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, path
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Referrer-Policy"] == "same-origin", path
        assert resp.headers["X-Frame-Options"] == "DENY", path
        assert "geolocation=(self)" in resp.headers["Permissions-Policy"], path
        assert "Strict-Transport-Security" not in resp.headers, path  # plain http in tests
        resp.close()
    auth.login()
    assert client.get("/coord/").headers["X-Frame-Options"] == "DENY"


def test_pages_about_people_are_not_stored_by_browsers_or_proxies(app, client, auth):
    auth.login()
    for path in ("/coord/", "/coord/volunteers/", "/coord/attendance/", "/coord/programme/export/hours.xlsx",
                 "/coord/programme/export/self-evaluation.csv"):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "private, no-store", path
    assert "no-cache" in client.get("/coord/board/rows").headers["Cache-Control"]   # revalidated by ETag
    volunteer = app.test_client()
    Auth(app, volunteer).volunteer()
    assert volunteer.get("/me").headers["Cache-Control"] == "private, no-store"
    assert volunteer.get("/api/v1/me").headers["Cache-Control"] == "private, no-store"
    with app.app_context():
        from keys import code_signer
        from services.qr import point_token
        point = PatrolPoint(code="P9", name="九号点", lat=31.0, lon=121.0, radius_m=100)
        db.session.add(point)
        db.session.commit()
        token = point_token(code_signer(), point)
    assert volunteer.get(f"/p/{token}").headers["Cache-Control"] == "private, no-store"   # name and hours
    assert "no-store" not in client.get("/static/js/app.js").headers.get("Cache-Control", "")
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


def test_hsts_when_https(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://pingan.example.cn")
    assert "max-age=" in client.get("/").headers["Strict-Transport-Security"]
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "http://pingan.test")
    assert "max-age=" in client.get("/", base_url="https://pingan.test").headers["Strict-Transport-Security"]


def test_no_template_has_inline_script_handlers_or_styles():
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if INLINE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "inline script/handler/style (blocked by the CSP; use static/js/app.js):\n" + "\n".join(offenders)


def _setup(app):
    with app.app_context():
        event = Event(name="春节烟花爆竹安全管控", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
        point = PatrolPoint(code="PJ01", name="周浦塘桥路口", lat=31.0689, lon=121.5049, radius_m=150)
        vol = Volunteer(name="赵六", phone="13900000006", vest_no="PJ-0006", joined_on=date(2026, 1, 1))
        db.session.add_all([event, point, vol])
        db.session.flush()
        shift = Shift(event_id=event.id, point_id=point.id, capacity=10,
                      starts_at=from_local(datetime(2027, 2, 5, 18)), ends_at=from_local(datetime(2027, 2, 5, 21)))
        db.session.add(shift)
        db.session.commit()
        return point.id, shift.id, vol.id


def test_confirmations_still_appear_and_pages_raise_no_csp_violation(app, auth):
    """In Chromium: each destructive button asks first (Cancel changes nothing), and no page logs a
    Content-Security-Policy violation or any other console error."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    auth.user("admin", "admin", "password-123")
    point_id, shift_id, vol_id = _setup(app)
    dialogs: list[str] = []
    problems: list[str] = []
    with live_server(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_context(locale="zh-CN").new_page()
        page.add_init_script("document.addEventListener('securitypolicyviolation', function (e) {"
                             " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });")
        page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))

        answer = {"accept": False}

        def on_dialog(dialog):
            dialogs.append(dialog.message)
            dialog.accept() if answer["accept"] else dialog.dismiss()
        page.on("dialog", on_dialog)

        for path in ("/", "/signin", "/me", "/coord/login"):
            page.goto(base + path)
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "password-123")
        page.click("button[type=submit]")
        page.wait_for_url(base + "/coord/")

        # Rotating a point's key: Cancel keeps version 1, OK makes version 2.
        page.goto(f"{base}/coord/points/{point_id}")
        page.get_by_role("button", name="更换二维码（旧海报作废）").click()
        assert dialogs[-1].startswith("更换后，已张贴的旧海报全部失效")
        with app.app_context():
            assert db.session.get(PatrolPoint, point_id).key_version == 1
        answer["accept"] = True
        with page.expect_navigation():
            page.get_by_role("button", name="更换二维码（旧海报作废）").click()
        with app.app_context():
            assert db.session.get(PatrolPoint, point_id).key_version == 2

        # Deleting a shift.
        answer["accept"] = False
        page.goto(f"{base}/coord/events/shifts/{shift_id}")
        page.get_by_role("button", name="删除班次").click()
        assert dialogs[-1] == "确定删除此班次？"
        with app.app_context():
            assert db.session.get(Shift, shift_id) is not None
        answer["accept"] = True
        with page.expect_navigation():
            page.get_by_role("button", name="删除班次").click()
        with app.app_context():
            assert db.session.get(Shift, shift_id) is None

        # Revoking a volunteer card.
        answer["accept"] = False
        page.goto(f"{base}/coord/volunteers/{vol_id}")
        page.get_by_role("button", name="作废旧卡").click()
        assert dialogs[-1].startswith("作废后旧卡无法再登录")
        with app.app_context():
            assert db.session.get(Volunteer, vol_id).card_version == 1

        # Other pages that had inline handlers or styles, and the busy ones.
        for path in ("/coord/admin/", "/coord/programme/", "/coord/programme/budget", "/coord/notices/new",
                     "/coord/board/", "/coord/volunteers/", "/coord/points/", f"/coord/points/{point_id}"):
            page.goto(base + path)
        browser.close()
    assert len(dialogs) == 5
    assert not problems, "\n".join(problems)
