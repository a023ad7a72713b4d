"""Bot handlers, offline: a fake request class records every Bot API call and answers it; updates
are built by hand and fed to `process_update`. Any exception inside a handler fails the test."""
from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Update
from telegram.request import BaseRequest, RequestData

from bot.app import build_application
from extensions import db
from models import (Assignment, ChatLink, Event, NoticeDraft, PatrolPoint, Shift, SurveyAnswer, SurveyComment, User,
                    Volunteer)
from services.messaging import issue_chat_link
from services.surveys import create_round
from services.users import create_user
from tests.fake_telegram import BOT

CHAT = 5550001


class RecordingRequest(BaseRequest):
    """Answers the Bot API offline and records what the bot asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._message_id = 100

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=None, write_timeout=None, connect_timeout=None, pool_timeout=None):
        name = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        self.calls.append((name, params))
        result: Any = True
        if name == "getMe":
            result = BOT
        elif name in ("sendMessage", "editMessageText"):
            self._message_id += 1
            result = {"message_id": params.get("message_id", self._message_id), "date": 0,
                      "chat": {"id": params.get("chat_id", CHAT), "type": "private"}, "text": params.get("text", "")}
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def texts(self, method: str = "sendMessage") -> list[str]:
        return [p.get("text", "") for m, p in self.calls if m == method]


def _message(text: str, chat_id: int = CHAT, message_id: int = 1) -> dict:
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
    return {"update_id": message_id, "message": {"message_id": message_id, "date": 0, "text": text,
                                                 "entities": entities,
                                                 "chat": {"id": chat_id, "type": "private"},
                                                 "from": {"id": chat_id, "is_bot": False, "first_name": "测试"}}}


def _callback(data: str, chat_id: int = CHAT, message_id: int = 50) -> dict:
    return {"update_id": 900 + message_id, "callback_query": {
        "id": "cb1", "chat_instance": "x", "data": data, "from": {"id": chat_id, "is_bot": False, "first_name": "测试"},
        "message": {"message_id": message_id, "date": 0, "text": "问卷", "chat": {"id": chat_id, "type": "private"}}}}


class BotHarness:
    def __init__(self, app) -> None:
        self.request = RecordingRequest()
        cfg = dict(app.config)
        cfg["TELEGRAM_BOT_TOKEN"] = "123456:TEST"
        self.application = build_application(cfg, app, request=self.request, with_sender=False)
        self.errors: list[BaseException] = []

        async def record(update, context):
            self.errors.append(context.error)

        self.application.add_error_handler(record)

    def feed(self, *updates: dict) -> RecordingRequest:
        async def go():
            async with self.application:
                for data in updates:
                    await self.application.process_update(Update.de_json(data, self.application.bot))
        asyncio.run(go())
        if self.errors:
            raise self.errors[0]
        return self.request


@pytest.fixture
def harness(app):
    return BotHarness(app)


@pytest.fixture
def volunteer(app):
    with app.app_context():
        v = Volunteer(name="孙八", phone="13900000008", vest_no="PJ-0008", team="丰顺居委", joined_on=date(2026, 1, 1))
        db.session.add(v)
        db.session.commit()
        return v.id


def _link_token(app, **who) -> str:
    with app.app_context():
        url = issue_chat_link(db.session, bot_username="pingan_test_bot", **who)
    assert url.startswith("https://t.me/pingan_test_bot?start=")
    return url.split("start=")[1]


def test_unlinked_chat_gets_a_short_explanation_only(harness):
    req = harness.feed(_message("/hours"), _message("你好"))
    texts = req.texts()
    assert len(texts) == 2 and all("请先绑定" in t for t in texts)


def test_start_links_once_and_greets_by_name(app, harness, volunteer):
    token = _link_token(app, volunteer_id=volunteer)
    req = harness.feed(_message(f"/start {token}"))
    assert "孙八，您好" in req.texts()[-1]
    with app.app_context():
        link = db.session.scalar(select(ChatLink))
        assert (link.chat_id, link.volunteer_id) == (CHAT, volunteer)
    again = BotHarness(app).feed(_message(f"/start {token}", chat_id=777))
    assert "已经用过" in again.texts()[-1]


def test_hours_and_help_for_a_linked_volunteer(app, harness, volunteer):
    token = _link_token(app, volunteer_id=volunteer)
    req = harness.feed(_message(f"/start {token}"), _message("/hours", message_id=2), _message("/help", message_id=3))
    hours_text = req.texts()[-2]
    assert "已累计 0.0 小时" in hours_text and "目标 6 小时" in hours_text
    assert "/shifts" in req.texts()[-1] and "/notice" not in req.texts()[-1]


def test_shifts_buttons_confirm_and_decline(app, harness, volunteer):
    with app.app_context():
        event = Event(name="元宵", starts_on=date(2099, 2, 1), ends_on=date(2099, 2, 1))
        point = PatrolPoint(code="P1", name="一号点", radius_m=100)
        db.session.add_all([event, point])
        db.session.flush()
        start = datetime(2099, 2, 1, 10, tzinfo=timezone.utc)
        shift = Shift(event_id=event.id, point_id=point.id, starts_at=start, ends_at=start + timedelta(hours=3), capacity=5)
        db.session.add(shift)
        db.session.flush()
        db.session.add(Assignment(shift_id=shift.id, volunteer_id=volunteer))
        db.session.commit()
        shift_id = shift.id
    token = _link_token(app, volunteer_id=volunteer)
    req = harness.feed(_message(f"/start {token}"), _message("/shifts", message_id=2))
    markup = [p for m, p in req.calls if m == "sendMessage"][-1]["reply_markup"]
    assert "一号点" in req.texts()[-1] and f"sh:c:{shift_id}" in json.dumps(markup, ensure_ascii=False)
    BotHarness(app).feed(_callback(f"sh:d:{shift_id}"))
    with app.app_context():
        assert db.session.scalar(select(Assignment.status)) == "declined"


def test_survey_button_records_answer_edits_message_then_takes_a_comment(app, harness, volunteer):
    with app.app_context():
        r = create_round(db.session, "2027 一季度")
    token = _link_token(app, volunteer_id=volunteer)
    harness.feed(_message(f"/start {token}"))
    h2 = BotHarness(app)
    req = h2.feed(_callback(f"sv:{r.id}:4"), _message("排班再早一点通知就好了", message_id=5))
    assert any(m == "answerCallbackQuery" for m, _p in req.calls)
    edited = req.texts("editMessageText")[-1]
    assert "满意" in edited and "4 分" in edited
    assert "已收到您的意见" in req.texts()[-1]
    with app.app_context():
        a = db.session.scalar(select(SurveyAnswer))
        assert (a.score, a.channel) == (4, "telegram")
        assert [c.text for c in db.session.scalars(select(SurveyComment))] == ["排班再早一点通知就好了"]
    BotHarness(app).feed(_callback(f"sv:{r.id}:5"))  # changing one's answer replaces it
    with app.app_context():
        assert [a.score for a in db.session.scalars(select(SurveyAnswer))] == [5]
    # A round takes a bounded number of comments: the one over says so (not "出错了").
    from services.surveys import MAX_COMMENTS
    more = BotHarness(app).feed(*[_message(f"第{i}条", message_id=10 + i) for i in range(MAX_COMMENTS)])
    assert "不能再添加" in more.texts()[-1]
    with app.app_context():
        assert db.session.scalar(select(func.count(SurveyComment.id))) == MAX_COMMENTS


def test_login_gives_a_fresh_web_link_without_personal_numbers(app, harness, volunteer):
    token = _link_token(app, volunteer_id=volunteer)
    req = harness.feed(_message(f"/start {token}"), _message("/login", message_id=2))
    text = req.texts()[-1]
    assert "http://pingan.test/login/" in text and "13900000008" not in text


def test_coordinator_notice_needs_confirmation_and_sends_once(app, harness, volunteer):
    with app.app_context():
        uid = create_user(db.session, "coord", "password-123", "coordinator").id
    token = _link_token(app, user_id=uid)
    req = harness.feed(_message(f"/start {token}"), _message("/notice 今晚 19:00 浦锦路加强巡逻", message_id=7))
    assert "将发送给 1 名" in req.texts()[-1] and "先发短信 0 人；1 人未绑定任何渠道" in req.texts()[-1]
    harness.request.calls.clear()
    with app.app_context():
        draft_id = db.session.scalar(select(NoticeDraft.id))
    # A new application (a restarted bot): the draft lives in the database, not in memory.
    req = BotHarness(app).feed(_callback(f"nd:s:{draft_id}", message_id=60), _callback(f"nd:s:{draft_id}", message_id=60))
    # The web's honest words: how many, and that this one only sees the web inbox.
    sent = req.texts("editMessageText")[0]
    assert "已发送 1 人，1 人未绑定任何渠道，只能在网页消息中看到" in sent and "排队" not in sent
    with app.app_context():
        from models import Message, OutboxItem
        assert db.session.query(Message).count() == 1
        assert db.session.query(OutboxItem).count() == 1  # the volunteer is not linked: web inbox only


def test_volunteers_cannot_use_coordinator_commands(app, harness, volunteer):
    token = _link_token(app, volunteer_id=volunteer)
    req = harness.feed(_message(f"/start {token}"), _message("/notice 冒充", message_id=2),
                       _message("/onpatrol", message_id=3))
    notice, onpatrol = req.texts()[-2:]
    assert "平安办协调员给志愿者发巡逻通知" in notice and "您是志愿者，不能使用" in notice
    assert "查看现在谁在岗" in onpatrol and "您是志愿者，不能使用" in onpatrol
    with app.app_context():
        assert db.session.scalar(select(NoticeDraft.id)) is None


def test_a_leader_sees_who_is_on_patrol(app, harness):
    with app.app_context():
        uid = create_user(db.session, "leader", "password-123", "leader").id
        assert db.session.get(User, uid).role == "leader"
    token = _link_token(app, user_id=uid)
    req = harness.feed(_message(f"/start {token}"), _message("/onpatrol", message_id=2))
    assert "现在没有人在岗" in req.texts()[-1]


def test_hours_round_down_so_6_0_means_the_target_is_met(app, harness, volunteer):
    from zoneinfo import ZoneInfo

    from services.review import add_adjustment

    today = datetime.now(ZoneInfo(app.config["TIMEZONE"])).date()
    with app.app_context():
        add_adjustment(db.session, volunteer, minutes=357, work_date=today, reason="补录纸质记录", by_user_id=None)
    token = _link_token(app, volunteer_id=volunteer)
    text = harness.feed(_message(f"/start {token}"), _message("/hours", message_id=2)).texts()[-1]
    assert "已累计 5.9 小时" in text and "还差 0.1 小时" in text and "已达到" not in text


def test_hours_uses_the_web_labels_and_marks_records_awaiting_review(app, harness, volunteer):
    from models import Attendance

    with app.app_context():
        now = datetime.now(timezone.utc)
        db.session.add(Attendance(volunteer_id=volunteer, status="closed", check_in_at=now - timedelta(hours=3),
                                  check_out_at=now - timedelta(hours=1), credited_minutes=120, work_date=now.date(),
                                  review_status="flagged"))
        db.session.commit()
    token = _link_token(app, volunteer_id=volunteer)
    text = harness.feed(_message(f"/start {token}"), _message("/hours", message_id=2)).texts()[-1]
    assert "扫码核验" in text and "历史导入" in text and "人工登记" in text and " h" not in text
    assert "2.0 小时 · 待核对" in text


def test_a_coordinator_asking_for_hours_is_told_what_it_is_for(app, harness):
    with app.app_context():
        uid = create_user(db.session, "coord", "password-123", "coordinator").id
    token = _link_token(app, user_id=uid)
    req = harness.feed(_message(f"/start {token}"), _message("/hours", message_id=2), _message("/shifts", message_id=3))
    assert "志愿者查看自己巡逻时长" in req.texts()[-2] and "志愿者查看、确认自己班次" in req.texts()[-1]


def test_a_notice_button_from_before_drafts_were_stored_sends_nothing(app, harness, volunteer):
    with app.app_context():
        uid = create_user(db.session, "coord", "password-123", "coordinator").id
    token = _link_token(app, user_id=uid)
    harness.feed(_message(f"/start {token}"), _message("/notice 今晚加强巡逻", message_id=7))
    req = BotHarness(app).feed(_callback("nt:s:1", message_id=60))
    answers = [p for m, p in req.calls if m == "answerCallbackQuery"]
    assert len(answers) == 1 and "已失效" in answers[0]["text"]
    with app.app_context():
        from models import Message
        assert db.session.query(Message).count() == 0
        assert db.session.scalar(select(NoticeDraft.status)) == "open"


def test_hours_show_a_half_hour_target_and_round_down(app, harness, volunteer):
    """A 6.5 h target read "目标 6 小时" (`%.0f`), and 6 h 29 min must not read 6.5."""
    from zoneinfo import ZoneInfo

    from services.programme import update_year
    from services.programme_year import current_year
    from services.review import add_adjustment

    now = datetime.now(ZoneInfo(app.config["TIMEZONE"]))
    with app.app_context():
        update_year(db.session, current_year(db.session, now), target_hours=6.5)
        add_adjustment(db.session, volunteer, minutes=389, work_date=now.date(), reason="补录纸质记录", by_user_id=None)
    token = _link_token(app, volunteer_id=volunteer)
    text = harness.feed(_message(f"/start {token}"), _message("/hours", message_id=2)).texts()[-1]
    assert "已累计 6.4 小时（目标 6.5 小时）" in text and "还差 0.1 小时" in text and "已达到" not in text
