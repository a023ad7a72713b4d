"""End to end: the real bot process (`python -m bot`, as its unit runs it) against a local fake Bot API server."""
from __future__ import annotations

import os
import re
import time
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from extensions import db
from models import ChatLink, OutboxItem, SurveyAnswer, Volunteer
from services.messaging import issue_chat_link
from services.surveys import create_round, send_round
from tests.fake_telegram import FakeTelegram, max_in_window

ROOT = Path(__file__).resolve().parents[2]


class BotProcess:
    """The bot as its systemd unit starts it, `python -m bot` (Telegram commands); `SenderProcess`
    is the outbox sender beside it, `python -m delivery`."""

    command = "bot"
    module = "bot"

    def __init__(self, app, fake: FakeTelegram, *args: str, **env) -> None:
        self.args = list(args)
        self.env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
                    "INSTANCE_PATH": app.config["INSTANCE_PATH"], "SECRET_KEY": app.config["SECRET_KEY"],
                    "DATA_KEY": app.config["DATA_KEY"], "PUBLIC_BASE_URL": app.config["PUBLIC_BASE_URL"],
                    "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.base_url,
                    "LOG_LEVEL": "WARNING", **{k: str(v) for k, v in env.items()}}
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / ".pytest_cache" / f"{self.command}-{os.getpid()}.log"

    def start(self) -> "BotProcess":
        self.log.parent.mkdir(exist_ok=True)
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args], cwd=ROOT, env=self.env,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._out.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


class SenderProcess(BotProcess):
    command = "sender"
    module = "delivery"


@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


def _link_token(app, volunteer_id: int) -> str:
    with app.app_context():
        return issue_chat_link(db.session, bot_username="pingan_test_bot", volunteer_id=volunteer_id).split("start=")[1]


def test_link_hours_survey_button_and_a_notice_from_the_cli(app, fake, runner, client, auth):
    with app.app_context():
        vol = Volunteer(name="周九", phone="13900000009", vest_no="PJ-0009", team="芦胜居委", joined_on=date(2026, 1, 1))
        other = Volunteer(name="吴十", phone="13900000010", team="芦胜居委", joined_on=date(2026, 1, 1))
        db.session.add_all([vol, other])
        db.session.commit()
        vid = vol.id
    bot = BotProcess(app, fake).start()
    sender = SenderProcess(app, fake).start()
    try:
        fake.wait_for(lambda: fake.sent(method="getMe") or [c for c in fake.calls if c.method == "getUpdates"])
        chat = 8800001
        fake.push_message(chat, f"/start {_link_token(app, vid)}")
        greeting = fake.wait_for(lambda: fake.sent(chat))
        assert "周九，您好" in greeting[0].params["text"]

        fake.push_message(chat, "/hours")
        fake.wait_for(lambda: len(fake.sent(chat)) >= 2)
        assert "小时" in fake.sent(chat)[1].params["text"]

        with app.app_context():
            r = create_round(db.session, "2027 春节后")
            send_round(db.session, r.id)
        question = fake.wait_for(lambda: [c for c in fake.sent(chat) if c.params.get("text", "").startswith("【满意度调查")])[0]
        assert "sv:" in question.params["reply_markup"]
        message_id = 1000 + len(fake.calls)  # any id: the fake edits whatever it is told
        fake.push_callback(chat, message_id, f"sv:{r.id}:5", text=question.params["text"])
        edited = fake.wait_for(lambda: fake.sent(chat, "editMessageText"))
        assert "非常满意" in edited[0].params["text"]
        assert fake.sent(method="answerCallbackQuery")
        with app.app_context():
            assert db.session.scalar(select(SurveyAnswer.score)) == 5

        result = runner.invoke(args=["notices", "send", "--text", "今晚 19:00–22:00 浦锦路烟花摊点加强巡逻"])
        assert result.exit_code == 0, result.output
        notice = fake.wait_for(lambda: [c for c in fake.sent(chat) if "浦锦路烟花摊点" in c.params.get("text", "")])
        assert len(notice) == 1
        with app.app_context():
            fake.wait_for(lambda: db.session.scalar(select(OutboxItem.status).where(
                OutboxItem.payload.like("%浦锦路烟花摊点%"), OutboxItem.chat_id == chat)) == "sent")
            message_id = db.session.scalar(select(OutboxItem.message_id).where(OutboxItem.payload.like("%浦锦路烟花摊点%")))
        # The notice page says what the server received: delivered to 周九, 吴十 not linked.
        auth.login()
        page = client.get(f"/coord/notices/{message_id}").get_data(as_text=True)
        rows = {name: status for name, status in re.findall(r'>(周九|吴十)</a></td><td[^>]*>[^<]*</td>\s*<td class="delivery-(\w+)"', page)}
        assert rows == {"周九": "sent", "吴十": "not_linked"}
        notice_chats = {int(c.params["chat_id"]) for c in fake.sent() if "浦锦路烟花摊点" in c.params.get("text", "")}
        assert notice_chats == {chat}

        # Three notices at once to one chat: at least a second apart, each once.
        for i in range(3):
            runner.invoke(args=["notices", "send", "--text", f"第{i}条提醒"])
        times = fake.wait_for(lambda: [c.at for c in fake.sent(chat) if "条提醒" in c.params.get("text", "")]
                              if len([c for c in fake.sent(chat) if "条提醒" in c.params.get("text", "")]) == 3 else None)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= 1.0 for g in gaps), gaps
    finally:
        sender.stop()
        bot.stop()


def _linked_volunteers(app, n: int, first_chat: int, prefix: str) -> None:
    with app.app_context():
        vols = [Volunteer(name=f"{prefix}{i:03d}", phone=f"13{first_chat % 10}8{i:07d}"[:11], joined_on=date(2026, 1, 1))
                for i in range(n)]
        db.session.add_all(vols)
        db.session.flush()
        db.session.add_all([ChatLink(chat_id=first_chat + i, volunteer_id=v.id) for i, v in enumerate(vols)])
        db.session.commit()


def test_broadcast_to_500_with_429s_and_network_errors_delivers_exactly_one_copy_each(app, fake, runner):
    rate = 50
    _linked_volunteers(app, 500, 40000, "整发")
    fake.retry_after = 1
    fake.fault = lambda method, params, i: "429" if i % 97 == 50 else "drop" if i % 61 == 30 else None
    bot = SenderProcess(app, fake, OUTBOX_RATE_PER_SECOND=rate).start()
    try:
        fake.wait_for(lambda: fake.sent(method="getMe"))
        assert runner.invoke(args=["notices", "send", "--text", "全员今晚 20:00 到岗"]).exit_code == 0
        fake.wait_for(lambda: len({c.params["chat_id"] for c in fake.sent()}) >= 500, timeout=120)
        time.sleep(1.0)  # anything still in flight would land now
    finally:
        bot.stop()
    chats = [int(c.params["chat_id"]) for c in fake.sent()]
    assert sorted(chats) == list(range(40000, 40500))  # each exactly once
    assert any(c.outcome == "429" for c in fake.calls) and any(c.outcome == "dropped" for c in fake.calls)
    assert max_in_window([c.at for c in fake.calls if c.method == "sendMessage"]) <= rate
    for t in [c.at for c in fake.calls if c.outcome == "429"]:
        during = [c for c in fake.calls if c.method == "sendMessage" and t + 0.3 < c.at < t + fake.retry_after - 0.1]
        assert not during, (t, [c.at for c in during])


def test_broadcast_to_500_survives_a_killed_sender(app, fake, runner):
    rate = 50
    with app.app_context():
        vols = [Volunteer(name=f"群发{i:03d}", phone=f"1380000{i:04d}", team="塘口居委", joined_on=date(2026, 1, 1))
                for i in range(500)]
        db.session.add_all(vols)
        db.session.flush()
        db.session.add_all([ChatLink(chat_id=20000 + i, volunteer_id=v.id) for i, v in enumerate(vols)])
        db.session.commit()
    fake.retry_after = 1
    fake.fault = lambda method, params, i: "429" if i % 97 == 50 else "drop" if i % 61 == 30 else None
    env = {"OUTBOX_RATE_PER_SECOND": rate, "OUTBOX_STALE_CLAIM_SECONDS": 3, "OUTBOX_CONCURRENCY": 4}
    bot = SenderProcess(app, fake, **env).start()
    try:
        fake.wait_for(lambda: fake.sent(method="getMe"))
        result = runner.invoke(args=["notices", "send", "--text", "紧急：全员今晚 20:00 到岗"])
        assert result.exit_code == 0 and "已发送 500 人" in result.output
        fake.wait_for(lambda: len(fake.sent()) >= 200, timeout=60)
        bot.kill()  # mid-broadcast, no goodbye
        bot = SenderProcess(app, fake, **env).start()

        def delivered():
            chats = {int(c.params["chat_id"]) for c in fake.sent() if "紧急" in c.params.get("text", "")}
            return len(chats) == 500
        fake.wait_for(delivered, timeout=120)
        with app.app_context():
            fake.wait_for(lambda: db.session.scalar(select(func.count(OutboxItem.id))
                                                    .where(OutboxItem.status == "sent")) == 500, timeout=30)
    finally:
        bot.stop()

    copies: dict[int, int] = {}
    for c in fake.sent():
        copies[int(c.params["chat_id"])] = copies.get(int(c.params["chat_id"]), 0) + 1
    assert set(copies) == {20000 + i for i in range(500)}
    doubled = [chat for chat, n in copies.items() if n > 1]
    assert len(doubled) <= env["OUTBOX_CONCURRENCY"], doubled  # only messages in flight at the kill
    attempts = [c.at for c in fake.calls if c.method == "sendMessage"]
    assert max_in_window(attempts) <= rate
    assert any(c.outcome == "429" for c in fake.calls) and any(c.outcome == "dropped" for c in fake.calls)
    # A 429 pauses every send for its retry_after (requests already in flight may still land).
    for t in [c.at for c in fake.calls if c.outcome == "429"]:
        during = [c for c in fake.calls if c.method == "sendMessage" and t + 0.3 < c.at < t + fake.retry_after - 0.1]
        assert not during, (t, [c.at for c in during])


def test_two_senders_on_postgresql_send_each_message_once_within_one_rate(app, fake, runner):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("several senders is a PostgreSQL setup (advisory lock, SKIP LOCKED)")
    rate = 40
    with app.app_context():
        vols = [Volunteer(name=f"双发{i:03d}", phone=f"1350000{i:04d}", joined_on=date(2026, 1, 1)) for i in range(150)]
        db.session.add_all(vols)
        db.session.flush()
        db.session.add_all([ChatLink(chat_id=30000 + i, volunteer_id=v.id) for i, v in enumerate(vols)])
        db.session.commit()
    senders = [SenderProcess(app, fake, OUTBOX_RATE_PER_SECOND=rate).start() for _ in range(2)]
    try:
        fake.wait_for(lambda: len([c for c in fake.calls if c.method == "getMe"]) >= 2)
        assert runner.invoke(args=["notices", "send", "--text", "双发送器测试"]).exit_code == 0
        fake.wait_for(lambda: len({c.params["chat_id"] for c in fake.sent()}) >= 150, timeout=60)
        with app.app_context():
            fake.wait_for(lambda: db.session.scalar(select(func.count(OutboxItem.id))
                                                    .where(OutboxItem.status == "sent")) == 150)
            workers = set(db.session.scalars(select(OutboxItem.claimed_by).distinct()))
    finally:
        for s in senders:
            s.stop()
    assert len(fake.sent()) == 150  # each message once
    assert len(workers) == 1  # one active sender; the other stood by
    assert max_in_window([c.at for c in fake.calls if c.method == "sendMessage"]) <= rate


def test_webhook_mode_checks_the_secret_token(app, fake):
    import json as _json
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bot = BotProcess(app, fake, TELEGRAM_WEBHOOK_URL="https://vest.example.cn/tg/hook", TELEGRAM_WEBHOOK_PORT=port,
                     TELEGRAM_WEBHOOK_SECRET="s3cret-token").start()
    try:
        setwebhook = fake.wait_for(lambda: fake.sent(method="setWebhook"))
        assert setwebhook[0].params["url"] == "https://vest.example.cn/tg/hook"
        assert setwebhook[0].params["secret_token"] == "s3cret-token"
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/help",
                                              "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
                                              "chat": {"id": 6600, "type": "private"},
                                              "from": {"id": 6600, "is_bot": False, "first_name": "x"}}}

        def post(secret):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/tg/hook", data=_json.dumps(update).encode(),
                                         headers={"Content-Type": "application/json",
                                                  **({"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {})})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    return resp.status
            except urllib.error.HTTPError as err:
                return err.code
            except urllib.error.URLError:
                return None

        fake.wait_for(lambda: post("s3cret-token") == 200)
        assert fake.wait_for(lambda: fake.sent(6600))  # the unlinked chat got its explanation
        count = len(fake.sent(6600))
        assert post("wrong") == 403 and post(None) == 403
        time.sleep(0.5)
        assert len(fake.sent(6600)) == count
    finally:
        bot.stop()
