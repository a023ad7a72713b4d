"""End to end: team notices posted to the team's WeCom group robot by the sender process, once
each, within 20 posts a minute per robot, against a local fake webhook."""
from __future__ import annotations

import time
import uuid
from datetime import date

from sqlalchemy import func, select

from extensions import db
from keys import data_cipher
from models import ChatLink, OutboxItem, Volunteer
from services.channels.wecom import set_team_robot
from services.messaging import Audience, send_notice
from tests.e2e.test_bot_e2e import SenderProcess
from tests.e2e.test_channels_e2e import enable_sms
from tests.fake_sms import FakeAliyunSms, FakeWecomRobot
from tests.fake_telegram import FakeTelegram


def test_team_notices_go_to_the_group_once_within_the_robots_limit(app):
    robot, sms, telegram = FakeWecomRobot().start(), FakeAliyunSms().start(), FakeTelegram().start()
    fail_once = {"done": False}

    def fault(key, index):
        if not fail_once["done"]:
            fail_once["done"] = True
            return "45009"  # "api freq out of limit": try again later
        return None
    robot.fault = fault
    enable_sms(app)
    with app.app_context():
        members = [Volunteer(name=f"群{i}", phone=f"1391000000{i}", team="塘口居委", joined_on=date(2026, 1, 1))
                   for i in range(4)]
        other = Volunteer(name="外队", phone="13910000099", team="丰顺居委", joined_on=date(2026, 1, 1))
        db.session.add_all([*members, other])
        db.session.flush()
        db.session.add(ChatLink(chat_id=8100, volunteer_id=members[0].id))
        db.session.commit()
        set_team_robot(db.session, data_cipher(), team="塘口居委", by="test", base=robot.base_url,
                       url=f"{robot.base_url}/cgi-bin/webhook/send?key=test-robot-1")
        with app.test_request_context():
            for i in range(22):
                send_notice(db.session, text=f"塘口第{i}号通知" + "巡" * (900 if i == 0 else 0),
                            audience=Audience("team", "塘口居委"), nonce=uuid.uuid4().hex, created_by_user_id=None)
    env = {"SMS_PROVIDER": "aliyun", "ALIBABA_CLOUD_ACCESS_KEY_ID": sms.access_key_id,
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sms.access_key_secret, "SMS_ALIYUN_BASE_URL": sms.base_url,
           "WECOM_WEBHOOK_BASE": robot.base_url + "/", "OUTBOX_CHAT_INTERVAL_SECONDS": 0.1}
    sender = SenderProcess(app, telegram, **env).start()
    try:
        robot.wait_for = telegram.wait_for
        telegram.wait_for(lambda: len(robot.delivered()) >= 19, timeout=30)  # well within the minute
        telegram.wait_for(lambda: len(telegram.sent(8100)) >= 22, timeout=60)  # 1 s apart per chat
        time.sleep(3)
        posts = robot.delivered()
    finally:
        sender.stop()
        for fake in (robot, sms, telegram):
            fake.stop()
    attempts = [c for c in robot.calls if c.outcome in ("ok", "45009")]
    # The robot's 20 a minute count the refused attempt too: 19 posts, the other 3 notices wait.
    assert len(attempts) == 20 and len(posts) == 19 and attempts[-1].at - attempts[0].at < 60
    texts = [p.params["content"] for p in posts]
    assert len(set(texts)) == len(texts)                                  # each notice once
    assert all(p.params["mentioned_mobile_list"] == ["@all"] for p in posts)
    assert all(len(t.encode()) <= 2048 for t in texts)
    assert not sms.calls                                                  # no SMS for team notices
    with app.app_context():
        statuses = dict(db.session.execute(select(OutboxItem.status, func.count()).where(OutboxItem.team.is_(None))
                                           .group_by(OutboxItem.status)).all())
        waiting = db.session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.team.is_not(None),
                                                                            OutboxItem.status == "pending"))
    assert statuses == {"sent": 22, "team_group": 66}                     # Telegram for the linked one, group for 3
    assert waiting == 3
