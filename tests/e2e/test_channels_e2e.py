"""End to end: the `sender` process drains one notice over Telegram, SMS and the web inbox, with
injected provider errors and rate limits, and a kill in the middle."""
from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from extensions import db
from models import ChatLink, ContactPreference, DeliveryAttempt, OutboxItem, Volunteer
from services.channels import settings as cs
from tests.e2e.test_bot_e2e import SenderProcess
from tests.fake_sms import FakeAliyunSms, FakeTencentSms
from tests.fake_telegram import FakeTelegram

TEMPLATE_TEXT = "平安办通知：${title}，请点${link}查看全文。"


def enable_sms(app, **extra) -> None:
    with app.app_context():
        for key, value in {"sms_enabled": "1", "sms_signature": "浦锦平安办", "sms_tpl_patrol_notice_code": "SMS_100",
                           "sms_tpl_patrol_notice_text": TEMPLATE_TEXT, "sms_tpl_survey_invite_code": "SMS_300",
                           "sms_tpl_survey_invite_text": "满意度调查（${name}）：点${link}一键作答。",
                           "sms_tpl_shift_reminder_code": "SMS_200",
                           "sms_tpl_shift_reminder_text": "班次提醒：${time}，${place}。${link}", **extra}.items():
            cs.put(db.session, key, value, by="test")
        db.session.commit()


@pytest.fixture
def telegram():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture(params=["aliyun", "tencent"])
def sms_fake(request):
    fake = (FakeAliyunSms() if request.param == "aliyun" else FakeTencentSms()).start()
    fake.provider = request.param
    yield fake
    fake.stop()


def sms_env(fake) -> dict:
    if fake.provider == "aliyun":
        return {"SMS_PROVIDER": "aliyun", "ALIBABA_CLOUD_ACCESS_KEY_ID": fake.access_key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": fake.access_key_secret, "SMS_ALIYUN_BASE_URL": fake.base_url}
    return {"SMS_PROVIDER": "tencent", "TENCENTCLOUD_SECRET_ID": fake.secret_id,
            "TENCENTCLOUD_SECRET_KEY": fake.secret_key, "TENCENT_SMS_SDK_APP_ID": "1400000001",
            "SMS_TENCENT_BASE_URL": fake.base_url}


def local(phone: str) -> str:
    return phone[-11:]


def test_a_notice_to_500_reaches_each_person_once_on_the_right_channel_through_a_killed_sender(
        app, runner, telegram, sms_fake):
    enable_sms(app)
    with app.app_context():
        vols = [Volunteer(name=f"渠道{i:03d}", phone=f"1390{i:07d}", joined_on=date(2026, 1, 1)) for i in range(500)]
        db.session.add_all(vols)
        db.session.flush()
        ids = [v.id for v in vols]
        db.session.add_all([ChatLink(chat_id=50000 + i, volunteer_id=ids[i]) for i in range(200)])
        db.session.add_all([ContactPreference(volunteer_id=ids[i], sms_opt_out=True) for i in range(450, 500)])
        db.session.commit()
    blocked = {50000 + i for i in (3, 77, 150)}                  # blocked the bot: they move on to SMS
    illegal = {f"1390{i:07d}" for i in (210, 333, 3)}             # the provider refuses these numbers for good
    busy_once: set[str] = set()
    busy = {f"1390{i:07d}" for i in (250, 251, 400)}              # "slow down" once, then fine
    lock = threading.Lock()

    def sms_fault(phone, index):
        number = local(phone)
        if number in illegal:
            return "isv.MOBILE_NUMBER_ILLEGAL" if sms_fake.provider == "aliyun" else "InvalidParameterValue.IncorrectPhoneNumber"
        with lock:
            if number in busy and number not in busy_once:
                busy_once.add(number)
                return "isv.BUSINESS_LIMIT_CONTROL" if sms_fake.provider == "aliyun" else "LimitExceeded.PhoneNumberThirtySecondLimit"
        return "drop" if index % 53 == 20 else None

    sms_fake.fault = sms_fault
    telegram.retry_after = 1
    telegram.fault = lambda method, params, i: ("403" if int(params.get("chat_id", 0)) in blocked
                                                else "429" if i % 97 == 50 else "drop" if i % 61 == 30 else None)
    env = {"OUTBOX_RATE_PER_SECOND": 50, "OUTBOX_STALE_CLAIM_SECONDS": 3, "OUTBOX_CONCURRENCY": 4,
           "SMS_RATE_PER_SECOND": 40, **sms_env(sms_fake)}
    sender = SenderProcess(app, telegram, **env).start()
    try:
        result = runner.invoke(args=["notices", "send", "--text", "今晚 20:00 全员到岗"])
        assert result.exit_code == 0, result.output
        telegram.wait_for(lambda: len(telegram.sent()) + len(sms_fake.delivered()) >= 150, timeout=60)
        sender.kill()  # mid-broadcast, no goodbye
        sender = SenderProcess(app, telegram, **env).start()

        def settled():
            with app.app_context():
                open_rows = db.session.scalar(select(func.count(OutboxItem.id)).where(
                    OutboxItem.status.in_(("pending", "sending"))))
                db.session.remove()
                return open_rows == 0
        telegram.wait_for(settled, timeout=150)
    finally:
        sender.stop()

    tg_copies: dict[int, int] = {}
    for c in telegram.sent():
        tg_copies[int(c.params["chat_id"])] = tg_copies.get(int(c.params["chat_id"]), 0) + 1
    sms_copies: dict[str, int] = {}
    for s in sms_fake.delivered():
        sms_copies[local(s.phone)] = sms_copies.get(local(s.phone), 0) + 1
    linked_ok = {50000 + i for i in range(200)} - blocked
    assert set(tg_copies) == linked_ok
    expected_sms = ({f"1390{i:07d}" for i in range(200, 450)} | {f"1390{i - 50000:07d}" for i in blocked}) - illegal
    assert set(sms_copies) == expected_sms
    assert not any(f"1390{i:07d}" in sms_copies for i in range(450, 500))        # opted out: web inbox only
    duplicates = sum(n - 1 for n in tg_copies.values()) + sum(n - 1 for n in sms_copies.values())
    assert duplicates <= env["OUTBOX_CONCURRENCY"]                              # only what was in flight at the kill
    assert any(c.outcome == "dropped" for c in sms_fake.calls) and busy_once == busy

    with app.app_context():
        status = dict(db.session.execute(select(OutboxItem.volunteer_id, OutboxItem.status)).all())
        channel = dict(db.session.execute(select(OutboxItem.volunteer_id, OutboxItem.channel)).all())
        by_phone = dict(db.session.execute(select(Volunteer.phone, Volunteer.id)).all())
        assert all(status[by_phone[p]] == "sent" and channel[by_phone[p]] == "sms" for p in expected_sms)
        assert all(status[ids[c - 50000]] == "sent" and channel[ids[c - 50000]] == "telegram" for c in linked_ok)
        assert all(status[by_phone[p]] == "unreachable" for p in illegal)        # recorded, not lost
        assert all(status[ids[i]] == "not_linked" for i in range(450, 500))
        # Every try is on record with its channel: a blocked chat's Telegram refusal, then its SMS.
        first_blocked = ids[3]
        tries = db.session.execute(select(DeliveryAttempt.channel, DeliveryAttempt.outcome)
                                   .join(OutboxItem, OutboxItem.id == DeliveryAttempt.outbox_id)
                                   .where(OutboxItem.volunteer_id == first_blocked)
                                   .order_by(DeliveryAttempt.id)).all()
        assert [tuple(t) for t in tries] == [("telegram", "gave_up"), ("sms", "gave_up")]  # 3 is also an illegal number
        blocked_two = ids[77]
        tries = db.session.execute(select(DeliveryAttempt.channel, DeliveryAttempt.outcome)
                                   .join(OutboxItem, OutboxItem.id == DeliveryAttempt.outbox_id)
                                   .where(OutboxItem.volunteer_id == blocked_two)
                                   .order_by(DeliveryAttempt.id)).all()
        assert tries[0] == ("telegram", "gave_up") and tries[-1] == ("sms", "sent")
