"""End to end: a survey invitation goes out by SMS (the real sender process, a fake provider); the
link is opened in a fresh browser context and answered in one tap; the same person answering again
from Telegram (the real bot process) replaces the answer."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from extensions import db
from models import ChatLink, ContactPreference, SurveyAnswer, Volunteer
from services.surveys import create_round, results, send_round
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.e2e.test_bot_e2e import BotProcess, SenderProcess
from tests.e2e.test_channels_e2e import enable_sms
from tests.fake_sms import FakeAliyunSms
from tests.fake_telegram import FakeTelegram
from tests.live import live_server


def test_survey_answered_from_an_sms_link_counts_once_and_telegram_replaces_it(app):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    sms, telegram = FakeAliyunSms().start(), FakeTelegram().start()
    original_base = app.config["PUBLIC_BASE_URL"]
    processes = []
    try:
        with live_server(app) as base:
            app.config["PUBLIC_BASE_URL"] = base
            enable_sms(app)
            with app.app_context():
                vol = Volunteer(name="钱七", phone="13900000077", team="塘口居委", joined_on=date(2026, 1, 1))
                db.session.add(vol)
                db.session.flush()
                db.session.add(ChatLink(chat_id=7700, volunteer_id=vol.id))
                db.session.add(ContactPreference(volunteer_id=vol.id, channel_order="sms,telegram"))
                db.session.commit()
                vid = vol.id
                r = create_round(db.session, "2027 春季满意度")
                round_id = r.id
                send_round(db.session, round_id)
            env = {"SMS_PROVIDER": "aliyun", "ALIBABA_CLOUD_ACCESS_KEY_ID": sms.access_key_id,
                   "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sms.access_key_secret, "SMS_ALIYUN_BASE_URL": sms.base_url}
            processes.append(SenderProcess(app, telegram, **env).start())
            delivered = telegram.wait_for(lambda: sms.delivered(), timeout=30)
            link = delivered[0].params["link"]
            assert link.startswith(base + "/s/") and delivered[0].params["name"] == "2027 春季满意度"
            assert not telegram.sent(7700)  # SMS first, as the person chose: one channel, not two

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                fresh = browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True, locale="zh-CN")
                page = fresh.new_page()
                page.goto(link)
                page.get_by_role("button", name="4 · 满意").click()
                page.wait_for_selector("#survey-done")
                page.get_by_role("button", name="4 · 满意").click()  # a second tap changes nothing
                page.wait_for_selector("#survey-done")
                assert not [c for c in fresh.cookies() if c["name"] == "pv_device"]  # not signed in to anything else
                page.goto(base + "/me")
                assert "钱七" not in page.content()
                browser.close()
            with app.app_context():
                assert results(db.session, round_id).responses == 1
                assert db.session.scalar(select(SurveyAnswer.channel)) == "sms"
                db.session.remove()

            processes.append(BotProcess(app, telegram).start())
            telegram.wait_for(lambda: [c for c in telegram.calls if c.method == "getUpdates"])
            telegram.push_callback(7700, 4242, f"sv:{round_id}:2", text="满意度调查")
            telegram.wait_for(lambda: telegram.sent(7700, "editMessageText"))
            with app.app_context():
                res = results(db.session, round_id)
                assert res.responses == 1 and res.by_score[2] == 1 and res.by_score[4] == 0
                answer = db.session.scalar(select(SurveyAnswer).where(SurveyAnswer.volunteer_id == vid))
                assert answer.channel == "telegram"
                db.session.remove()
    finally:
        for proc in processes:
            proc.stop()
        sms.stop()
        telegram.stop()
        app.config["PUBLIC_BASE_URL"] = original_base
