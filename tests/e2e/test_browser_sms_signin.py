"""End to end on a phone: 用短信验证码登录 → the number on a numeric keypad → 验证码已发送 → the code
that the real sender process texted through a fake provider → signed in with the usual device
cookie, back on the poster the volunteer had scanned."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from extensions import db
from keys import code_signer
from models import Device, PatrolPoint, Volunteer
from services.channels import settings as cs
from services.qr import scan_url
from services.settings import SELF_SERVICE_SIGNIN, set_setting
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.e2e.test_bot_e2e import SenderProcess
from tests.fake_sms import FakeAliyunSms
from tests.fake_telegram import FakeTelegram
from tests.live import live_server


def test_an_older_volunteer_signs_in_with_an_sms_code(app):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    sms, telegram = FakeAliyunSms().start(), FakeTelegram().start()
    env = {"SMS_PROVIDER": "aliyun", "ALIBABA_CLOUD_ACCESS_KEY_ID": sms.access_key_id,
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sms.access_key_secret, "SMS_ALIYUN_BASE_URL": sms.base_url}
    saved = {k: app.config.get(k) for k in env}
    sender = None
    try:
        app.config.update(env)
        with live_server(app) as base:
            with app.app_context():
                vol = Volunteer(name="孙奶奶", phone="13900000088", team="塘口居委", joined_on=date(2026, 1, 1))
                point = PatrolPoint(code="PJ09", name="塘口公园", lat=31.07, lon=121.50, radius_m=150)
                db.session.add_all([vol, point])
                set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="test")
                for key, value in {"sms_enabled": "1", "sms_signature": "浦锦平安办",
                                   "sms_tpl_signin_code_code": "SMS_900",
                                   "sms_tpl_signin_code_text": "您的平安马甲登录验证码：${code}，5分钟内有效。"}.items():
                    cs.put(db.session, key, value, by="test")
                db.session.commit()
                poster = scan_url(base, code_signer(), point)
                vid = vol.id
            sender = SenderProcess(app, telegram, **env).start()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                context = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True,
                                              locale="zh-CN")
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(poster)
                page.get_by_role("link", name="用短信验证码登录").click()
                assert page.locator("#phone").get_attribute("inputmode") == "numeric"
                page.fill("#phone", "139 0000 0088")
                page.get_by_role("button", name="发送验证码").click()
                page.wait_for_selector("#code-sent")
                assert "验证码已发送" in page.content()
                resend = page.locator("button[data-wait-seconds]")
                assert resend.is_disabled() and "秒后可重新发送" in resend.inner_text()  # counting down
                texted = telegram.wait_for(lambda: sms.delivered(), timeout=30)
                assert texted[0].phone.endswith("13900000088") and texted[0].template == "SMS_900"
                code = texted[0].params["code"]
                assert len(code) == 6 and code.isdigit()
                assert page.locator("#code").get_attribute("inputmode") == "numeric"
                page.fill("#code", code)
                page.get_by_role("button", name="登录").click()
                page.wait_for_load_state()
                assert page.url == poster and "孙奶奶" in page.content()  # back on the poster, signed in
                assert [c for c in context.cookies() if c["name"] == "pv_device" and c["httpOnly"]]
                assert not [e for e in errors if "Content Security Policy" in e], errors
                browser.close()
            with app.app_context():
                assert db.session.scalar(select(Device.method).where(Device.volunteer_id == vid)) == "sms_code"
                db.session.remove()
    finally:
        if sender is not None:
            sender.stop()
        sms.stop()
        telegram.stop()
        for key, value in saved.items():
            if value is None:
                app.config.pop(key, None)
            else:
                app.config[key] = value
