"""End to end, the bot as a front desk: the real bot process against the fake Bot API server, which
answers an identical edit with 400 "message is not modified" and refuses texts over 4,096
characters, as Telegram does."""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from extensions import db
from models import (Assignment, ChatLink, Event, Message, MessageRecipient, NoticeDraft, OutboxItem, PatrolPoint,
                    Shift, SurveyAnswer, SurveyComment, Volunteer)
from services.jobs import send_due_reminders
from services.messaging import issue_chat_link
from services.settings import OFFICE_PHONE, set_setting
from services.surveys import create_round
from services.users import create_user, set_team
from tests.conftest import csrf_from
from tests.e2e.test_bot_e2e import BotProcess, SenderProcess
from tests.fake_telegram import FakeTelegram

VOL_CHAT, COORD_CHAT, LEADER_CHAT = 8810001, 8810002, 8810003
PHONE = "021-5888 0000"


@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def world(app):
    now = datetime.now(timezone.utc)
    with app.app_context():
        vol = Volunteer(name="钱二", phone="13700000002", team="塘口居委", joined_on=date(2026, 1, 1))
        web_only = Volunteer(name="孙三", phone="13700000003", team="丰顺居委", joined_on=date(2026, 1, 1))
        event = Event(name="元宵节", starts_on=now.date(), ends_on=(now + timedelta(days=500)).date())
        point = PatrolPoint(code="P9", name="浦锦路口", radius_m=100)
        db.session.add_all([vol, web_only, event, point])
        db.session.flush()
        later = Shift(event_id=event.id, point_id=point.id, starts_at=now + timedelta(hours=3),
                      ends_at=now + timedelta(hours=6), capacity=5)
        started = Shift(event_id=event.id, point_id=point.id, starts_at=now - timedelta(minutes=10),
                        ends_at=now + timedelta(hours=2), capacity=5)
        next_year = Shift(event_id=event.id, point_id=point.id, starts_at=now + timedelta(days=400),
                          ends_at=now + timedelta(days=400, hours=2), capacity=5)
        db.session.add_all([later, started, next_year])
        db.session.flush()
        db.session.add_all([Assignment(shift_id=s.id, volunteer_id=vol.id) for s in (later, started, next_year)])
        coord = create_user(db.session, "zhang", "password-123", "coordinator", "张主任")
        leader = create_user(db.session, "lead", "password-123", "leader")
        set_team(db.session, leader.id, "塘口居委")
        db.session.add(ChatLink(chat_id=LEADER_CHAT, user_id=leader.id))
        set_setting(db.session, OFFICE_PHONE, PHONE, by="test")
        r = create_round(db.session, "2027 一季度", opens_at=now - timedelta(days=1))
        db.session.commit()
        tokens = {who: issue_chat_link(db.session, bot_username="pingan_test_bot", **kw).split("start=")[1]
                  for who, kw in (("vol", {"volunteer_id": vol.id}), ("coord", {"user_id": coord.id}))}
        return {"vol": vol.id, "coord": coord.id, "later": later.id, "started": started.id, "next_year": next_year.id,
                "round": r.id, "tokens": tokens, "year": next_year.starts_at.year}


def _texts(fake: FakeTelegram, chat: int) -> list[str]:
    return [c.params.get("text", "") for c in fake.sent(chat)]


def _answers(fake: FakeTelegram) -> list[dict]:
    return [c.params for c in fake.calls if c.method == "answerCallbackQuery" and c.outcome == "ok"]


def _wait_answers(fake: FakeTelegram, n: int) -> list[dict]:
    return fake.wait_for(lambda: _answers(fake) if len(_answers(fake)) >= n else None)


def _no_error_shown(fake: FakeTelegram) -> None:
    shown = [c.params.get("text", "") for c in fake.calls if c.method in ("sendMessage", "answerCallbackQuery")]
    assert not [t for t in shown if "出错" in t], shown


def _buttons(fake: FakeTelegram, chat: int, message_id: int) -> list[str]:
    markup = fake.markup(chat, message_id) or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def test_the_front_desk(app, fake, world, client):
    bot = BotProcess(app, fake).start()
    sender = SenderProcess(app, fake).start()  # the outbox (reminders, leave notes) goes out from its own process
    try:
        fake.wait_for(lambda: [c for c in fake.calls if c.method == "getUpdates"])
        # Linking; each chat's command menu is its own role's.
        fake.push_message(VOL_CHAT, f"/start {world['tokens']['vol']}")
        fake.push_message(COORD_CHAT, f"/start {world['tokens']['coord']}")
        menus = fake.wait_for(lambda: [c for c in fake.sent(method="setMyCommands") if c.params.get("scope")]
                              if len([c for c in fake.sent(method="setMyCommands") if c.params.get("scope")]) >= 2
                              else None)
        by_chat = {json.loads(c.params["scope"])["chat_id"]: [x["command"] for x in json.loads(c.params["commands"])]
                   for c in menus}
        assert "hours" in by_chat[VOL_CHAT] and not {"notice", "onpatrol"} & set(by_chat[VOL_CHAT])
        assert "notice" in by_chat[COORD_CHAT] and "hours" not in by_chat[COORD_CHAT]
        default = [c for c in fake.sent(method="setMyCommands") if not c.params.get("scope")][0]
        assert "notice" not in default.params["commands"]  # the menu before linking is a volunteer's
        fake.wait_for(lambda: len(fake.sent(COORD_CHAT)) >= 1)
        # Reusing one's own used link: told they are already linked.
        fake.push_message(VOL_CHAT, f"/start {world['tokens']['vol']}")
        fake.wait_for(lambda: [t for t in _texts(fake, VOL_CHAT) if "已经绑定过了" in t])

        # /shifts: each with its status, the year when not this one.
        fake.push_message(VOL_CHAT, "/shifts")
        fake.wait_for(lambda: len([t for t in _texts(fake, VOL_CHAT) if "状态：" in t]) >= 3)
        cards = [t for t in _texts(fake, VOL_CHAT) if "状态：" in t]
        assert sum("状态：已安排" in t for t in cards) == 2 and sum("状态：进行中" in t for t in cards) == 1
        assert sum(f"{world['year']}-" in t for t in cards) == 1
        later_msg = fake.find_message(VOL_CHAT, "状态：已安排")  # the latest one is next year's
        next_year_msg = later_msg
        assert _buttons(fake, VOL_CHAT, next_year_msg) == [f"sh:c:{world['next_year']}", f"sh:d:{world['next_year']}"]

        # A double tap on 确认: one change, the second press a toast, no error.
        fake.push_callback(VOL_CHAT, next_year_msg, f"sh:c:{world['next_year']}")
        fake.push_callback(VOL_CHAT, next_year_msg, f"sh:c:{world['next_year']}")
        answers = _wait_answers(fake, 2)
        edits = [c for c in fake.calls if c.method == "editMessageText"]
        assert [c.outcome for c in edits] == ["ok", "400"]
        assert "状态：已确认" in fake.message_text(VOL_CHAT, next_year_msg)
        assert answers[1].get("text") == "已经处理过了"
        with app.app_context():
            assert db.session.scalar(select(Assignment.status).where(Assignment.shift_id == world["next_year"])) \
                == "confirmed"

        # Reminders carry 确认/请假; 请假 from a reminder reaches the coordinator's chat and inbox.
        with app.app_context():
            send_due_reminders(db.session, datetime.now(timezone.utc))
        reminder = fake.wait_for(lambda: [c for c in fake.sent(VOL_CHAT) if "巡逻提醒】" in c.params.get("text", "")])[0]
        assert f"sh:d:{world['later']}" in reminder.params["reply_markup"]
        reminder_msg = fake.find_message(VOL_CHAT, "巡逻提醒】")
        fake.push_callback(VOL_CHAT, reminder_msg, f"sh:d:{world['later']}")
        fake.wait_for(lambda: "状态：已请假" in (fake.message_text(VOL_CHAT, reminder_msg) or ""))
        assert fake.message_text(VOL_CHAT, reminder_msg).startswith("【")  # the reminder's text is kept
        assert _buttons(fake, VOL_CHAT, reminder_msg) == [f"sh:u:{world['later']}"]
        leave = fake.wait_for(lambda: [t for t in _texts(fake, COORD_CHAT) if "请假" in t and "钱二" in t])
        assert "浦锦路口" in leave[0]
        assert fake.wait_for(lambda: [t for t in _texts(fake, LEADER_CHAT) if "钱二" in t])  # the team's leader
        with app.app_context():
            inbox = db.session.scalar(select(func.count(MessageRecipient.id)).join(Message).where(
                Message.kind == "leave", MessageRecipient.user_id == world["coord"]))
            assert inbox == 1
        client.post("/coord/login", data={"username": "zhang", "password": "password-123",
                                          "csrf_token": csrf_from(client)})
        assert "钱二" in client.get("/coord/inbox/").get_data(as_text=True)
        board = client.get("/coord/board/").get_data(as_text=True)
        assert "钱二" in board.split('id="leave"')[1]

        # 请假 after the start: refused, with the office's phone number.
        started_msg = fake.find_message(VOL_CHAT, "状态：进行中")
        assert _buttons(fake, VOL_CHAT, started_msg) == []
        fake.push_callback(VOL_CHAT, started_msg, f"sh:d:{world['started']}")
        refused = _wait_answers(fake, 4)[-1]
        assert "班次已开始，请直接联系平安办" in refused["text"] and PHONE in refused["text"]
        with app.app_context():
            assert db.session.scalar(select(Assignment.status).where(Assignment.shift_id == world["started"])) \
                == "assigned"

        # A notice: one ending, a double tap on 发送 queues it once, the result says who gets a push.
        fake.push_message(COORD_CHAT, "/notice 今晚 19:00 浦锦路加强巡逻")
        preview_msg = fake.find_message(COORD_CHAT, "将发送给 2 名")
        assert "—— 平安办 张主任" in fake.message_text(COORD_CHAT, preview_msg)
        send = [d for d in _buttons(fake, COORD_CHAT, preview_msg) if d.startswith("nd:s:")][0]
        before = len(_answers(fake))
        fake.push_callback(COORD_CHAT, preview_msg, send)
        fake.push_callback(COORD_CHAT, preview_msg, send)
        _wait_answers(fake, before + 2)
        result = fake.message_text(COORD_CHAT, preview_msg)
        assert "已发送 2 人，1 人未绑定任何渠道，只能在网页消息中看到。推送：Telegram 1 人，短信 0 人。" in result
        assert _buttons(fake, COORD_CHAT, preview_msg) == []
        notice = fake.wait_for(lambda: [t for t in _texts(fake, VOL_CHAT) if "浦锦路加强巡逻" in t])
        assert "平安办 张主任" in notice[0]
        with app.app_context():
            assert db.session.scalar(select(func.count(Message.id)).where(Message.kind == "notice")) == 1

        # 取消, then 发送 on the cancelled draft: refused, nothing sent.
        fake.push_message(COORD_CHAT, "/notice 这条不发了")
        draft_msg = fake.find_message(COORD_CHAT, "这条不发了")
        cancel, send = ([d for d in _buttons(fake, COORD_CHAT, draft_msg) if d.startswith(p)][0]
                        for p in ("nd:c:", "nd:s:"))
        before = len(_answers(fake))
        fake.push_callback(COORD_CHAT, draft_msg, cancel)
        fake.push_callback(COORD_CHAT, draft_msg, send)
        refusal = _wait_answers(fake, before + 2)[-1]
        assert "已取消" in refusal["text"] and "已取消" in fake.message_text(COORD_CHAT, draft_msg)
        with app.app_context():
            assert db.session.scalar(select(func.count(Message.id)).where(Message.kind == "notice")) == 1

        # Too long: refused at the draft with its length.
        fake.push_message(COORD_CHAT, "/notice " + "巡" * 2500)
        fake.wait_for(lambda: [t for t in _texts(fake, COORD_CHAT) if "2,500 字，最多 2,000 字" in t])

        # Survey: a score opens a comment window with 跳过; two comments are both kept.
        fake.push_callback(VOL_CHAT, 777, f"sv:{world['round']}:4", text="满意度调查")
        fake.wait_for(lambda: "10 分钟内" in (fake.message_text(VOL_CHAT, 777) or ""))
        assert _buttons(fake, VOL_CHAT, 777) == [f"sk:{world['round']}"]
        fake.push_message(VOL_CHAT, "排班通知早一点")
        fake.push_message(VOL_CHAT, "马甲再多一件")
        fake.wait_for(lambda: len([t for t in _texts(fake, VOL_CHAT) if "已收到您的意见" in t]) == 2)
        # Time passes: the window closes; the next message is not a comment.
        with app.app_context():
            db.session.execute(update(SurveyAnswer).values(comment_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
            db.session.commit()
        fake.push_message(VOL_CHAT, "明天的班我去不了了")
        honest = fake.wait_for(lambda: [t for t in _texts(fake, VOL_CHAT) if "无法转达" in t])
        assert PHONE in honest[-1] and "/shifts" in honest[-1]
        with app.app_context():
            assert db.session.scalars(select(SurveyComment.text).order_by(SurveyComment.id)).all() == [
                "排班通知早一点", "马甲再多一件"]

        # A photo with a caption, a sticker and an unknown command: each gets the honest answer.
        count = len([t for t in _texts(fake, VOL_CHAT) if "无法转达" in t])
        fake.push_update({"photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 10, "height": 10}],
                          "caption": "路口有积水"}, VOL_CHAT)
        fake.push_update({"sticker": {"file_id": "s1", "file_unique_id": "s1", "width": 10, "height": 10,
                                      "is_animated": False, "is_video": False, "type": "regular"}}, VOL_CHAT)
        fake.push_message(VOL_CHAT, "/whatever")
        fake.wait_for(lambda: len([t for t in _texts(fake, VOL_CHAT) if "无法转达" in t]) >= count + 3)
        _no_error_shown(fake)
    finally:
        sender.stop()
        bot.stop()


def test_in_a_group_nobody_acts_for_the_linked_coordinator(app, fake):
    """#10.18: a group chat once linked to a coordinator; an unlinked member sends /notice and
    presses 发送 on an open draft of that coordinator — nothing is sent."""
    group, member = -100500, 990099
    with app.app_context():
        vol = Volunteer(name="周九", phone="13900000009", joined_on=date(2026, 1, 1))
        db.session.add(vol)
        coord = create_user(db.session, "coord", "password-123", "coordinator")
        db.session.flush()
        db.session.add(ChatLink(chat_id=group, user_id=coord.id))  # linked before links were private-only
        db.session.add(NoticeDraft(user_id=coord.id, chat_id=group, text="冒充的通知", status="open"))
        db.session.commit()
        draft_id = db.session.scalar(select(NoticeDraft.id))
        token = issue_chat_link(db.session, bot_username="pingan_test_bot", volunteer_id=vol.id).split("start=")[1]
    bot = BotProcess(app, fake).start()
    try:
        fake.wait_for(lambda: [c for c in fake.calls if c.method == "getUpdates"])
        fake.push_message(group, "/notice 冒充的通知", user_id=member, chat_type="supergroup")
        fake.push_callback(group, 4242, f"nd:s:{draft_id}", text="冒充的通知", user_id=member, chat_type="supergroup")
        fake.push_message(group, "/hours", user_id=member, chat_type="supergroup")
        fake.push_message(group, f"/start {token}", user_id=member, chat_type="supergroup")  # linking: private only
        fake.wait_for(lambda: len(fake.sent(group)) >= 3 and _answers(fake))
        time.sleep(0.5)
    finally:
        bot.stop()
    assert all("私聊" in t for t in _texts(fake, group))
    assert "私聊" in _answers(fake)[0]["text"]
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 0
        assert db.session.scalar(select(func.count(OutboxItem.id))) == 0
        assert db.session.scalar(select(NoticeDraft.status)) == "open"
        assert db.session.scalar(select(func.count(ChatLink.id)).where(ChatLink.volunteer_id.is_not(None))) == 0
