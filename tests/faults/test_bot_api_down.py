"""The Bot API down: the bot keeps trying at start (5xx, then timeouts) and polls once it is back;
down for a while in the middle of a broadcast, nothing is lost or sent twice."""
from __future__ import annotations

import time
from datetime import date

import pytest
from sqlalchemy import select

from extensions import db
from models import ChatLink, OutboxItem, Volunteer
from tests.e2e.test_bot_e2e import BotProcess, SenderProcess, _linked_volunteers
from tests.e2e.test_channels_e2e import enable_sms, sms_env
from tests.fake_sms import FakeAliyunSms
from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.faults


@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


def test_the_bot_waits_for_the_bot_api_with_backoff_and_then_polls(app, fake):
    fake.outage = "500"
    bot = BotProcess(app, fake, TELEGRAM_RETRY_MAX_SECONDS=2, LOG_LEVEL="WARNING").start()
    try:
        fake.wait_for(lambda: len([c for c in fake.calls if c.method == "getMe"]) >= 3, timeout=30)
        assert bot.proc.poll() is None, "the bot exited on a 500 from getMe"
        tries = [c.at for c in fake.calls if c.method == "getMe"]
        gaps = [b - a for a, b in zip(tries, tries[1:])]
        assert gaps[1] > gaps[0] * 1.3, gaps  # backing off, not hammering

        fake.outage_hold = 6.0
        fake.outage = "timeout"  # now it hangs: PTB times out after 5 s
        seen = len(fake.calls)
        fake.wait_for(lambda: any(c.outcome == "outage-timeout" for c in fake.calls[seen:]), timeout=30)
        time.sleep(6.5)
        assert bot.proc.poll() is None, "the bot exited on a timeout"

        fake.outage = None
        fake.wait_for(lambda: any(c.method == "getUpdates" and c.outcome == "ok" for c in fake.calls), timeout=40)
        assert bot.proc.poll() is None
    finally:
        bot.stop()


def test_a_bot_api_outage_mid_broadcast_loses_and_doubles_nothing(app, fake, runner):
    _linked_volunteers(app, 120, 60000, "断网")
    bot = SenderProcess(app, fake, OUTBOX_RATE_PER_SECOND=30).start()  # the outbox sender's own process
    try:
        assert runner.invoke(args=["notices", "send", "--text", "今晚 20:00 到岗"]).exit_code == 0
        fake.wait_for(lambda: len(fake.sent()) >= 30, timeout=60)
        fake.outage = "500"
        started = time.monotonic()
        time.sleep(12)  # the Bot API answers 500 to everything for a while
        during = [c for c in fake.calls if c.outcome == "outage-500" and c.method == "sendMessage"]
        fake.outage = None
        fake.wait_for(lambda: len(fake.sent()) >= 120, timeout=120)
        time.sleep(1.0)  # anything still in flight would land now
        with app.app_context():
            rows = db.session.execute(select(OutboxItem.status, OutboxItem.attempts)).all()
            db.session.remove()
    finally:
        bot.stop()
    chats = sorted(int(c.params["chat_id"]) for c in fake.sent())
    assert chats == list(range(60000, 60120))  # every message, each exactly once
    assert rows and all(status == "sent" for status, _ in rows)
    # The outage cost no attempts (a long one would otherwise fail messages after 8 tries) ...
    assert all(attempts == 1 for _, attempts in rows), sorted({a for _, a in rows})
    # ... and the sender backed off instead of hammering the API (30 a second before it).
    assert during and len(during) <= 20, (len(during), time.monotonic() - started)


def test_the_sender_starting_while_the_bot_api_is_down_keeps_sms_going_and_sends_telegram_later(app, fake, runner):
    """The sender used to exit at once when getMe failed at start, and with it the SMS and WeCom
    senders of the same process, again at every restart (a server where Telegram is blocked)."""
    sms = FakeAliyunSms().start()
    sms.provider = "aliyun"
    enable_sms(app)
    with app.app_context():
        on_telegram = Volunteer(name="电报", phone="13900000001", joined_on=date(2026, 1, 1))
        on_sms = Volunteer(name="短信", phone="13900000002", joined_on=date(2026, 1, 1))
        db.session.add_all([on_telegram, on_sms])
        db.session.flush()
        db.session.add(ChatLink(chat_id=71001, volunteer_id=on_telegram.id))
        db.session.commit()
    fake.outage = "500"
    sender = SenderProcess(app, fake, TELEGRAM_RETRY_MAX_SECONDS=2, **sms_env(sms)).start()
    try:
        fake.wait_for(lambda: len([c for c in fake.calls if c.method == "getMe"]) >= 1, timeout=30)
        assert runner.invoke(args=["notices", "send", "--text", "今晚 20:00 到岗"]).exit_code == 0
        fake.wait_for(lambda: sms.delivered(), timeout=30)   # SMS goes out while Telegram is down
        fake.wait_for(lambda: len([c for c in fake.calls if c.method == "getMe"]) >= 3, timeout=30)
        assert sender.proc.poll() is None, "the sender exited because the Bot API was down"
        assert not fake.sent(71001)
        tries = [c.at for c in fake.calls if c.method == "getMe"]
        assert all(b - a > 0.5 for a, b in zip(tries, tries[1:])), tries  # backing off, not hammering

        fake.outage = None
        fake.wait_for(lambda: fake.sent(71001), timeout=30)
        time.sleep(1.5)
        assert len(fake.sent(71001)) == 1 and len(sms.delivered()) == 1
        assert sender.proc.poll() is None
    finally:
        sender.stop()
        sms.stop()
