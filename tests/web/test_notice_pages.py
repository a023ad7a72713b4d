"""Notices, the web inbox, the web survey and Telegram linking over HTTP."""
from __future__ import annotations

import re
from datetime import date

from sqlalchemy import func, select

from extensions import db
from models import ChatLink, Message, OutboxItem, SurveyAnswer, Volunteer
from services.settings import TELEGRAM_BOT_USERNAME, set_setting
from services.surveys import comments, create_round
from tests.conftest import Auth, csrf_from


def _volunteers(app, n=3):
    with app.app_context():
        vols = [Volunteer(name=f"乙{i}", phone=f"1360000000{i}", team="塘口居委", joined_on=date(2026, 1, 1))
                for i in range(n)]
        db.session.add_all(vols)
        db.session.commit()
        return [v.id for v in vols]


def test_compose_preview_send_once_and_see_delivery(app, client, auth):
    _volunteers(app)
    auth.login()
    token = csrf_from(client, "/coord/notices/new")
    empty = client.post("/coord/notices/preview", data={"csrf_token": token, "text": "", "audience": "all"})
    assert empty.status_code == 400 and "不能为空" in empty.get_data(as_text=True)
    page = client.post("/coord/notices/preview", data={"csrf_token": token, "text": "今晚加强巡逻", "audience": "all",
                                                        "title": "巡逻通知"}).get_data(as_text=True)
    assert "共 3 人" in page and "0 人已绑定" in page
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page).group(1)
    form = {"csrf_token": token, "text": "今晚加强巡逻", "audience": "all", "title": "巡逻通知", "nonce": nonce}
    first = client.post("/coord/notices/send", data=form)
    second = client.post("/coord/notices/send", data=form, follow_redirects=True)
    assert first.status_code == 302 and "不会重复发送" in second.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 1
        assert db.session.scalar(select(func.count(OutboxItem.id))) == 3
    detail = client.get(first.headers["Location"]).get_data(as_text=True)
    assert detail.count("未绑定") >= 3 and "乙0" in detail


def test_volunteer_inbox_marks_read_and_coordinator_sees_it(app, client, auth):
    phone = app.test_client()
    vid = Auth(app, phone).volunteer()
    auth.login()
    token = csrf_from(client, "/coord/notices/new")
    page = client.post("/coord/notices/preview", data={"csrf_token": token, "text": "集合地点改到社区中心",
                                                        "audience": "all"}).get_data(as_text=True)
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page).group(1)
    sent = client.post("/coord/notices/send", data={"csrf_token": token, "text": "集合地点改到社区中心",
                                                     "audience": "all", "nonce": nonce})
    me = phone.get("/me").get_data(as_text=True)
    assert 'badge badge-bad">1<' in me
    box = phone.get("/me/inbox").get_data(as_text=True)
    assert "集合地点改到社区中心" in box
    # Opening the inbox is a GET and marks nothing (issue 10, item 16); the page's POST does.
    assert 'badge badge-bad">1<' in phone.get("/me").get_data(as_text=True)
    ids = re.findall(r'name="message_id" value="(\d+)"', box)
    phone.post("/me/inbox/read", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', box).group(1),
                                       "message_id": ids})
    assert 'badge badge-bad' not in phone.get("/me").get_data(as_text=True)
    detail = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "网页已读 1" in detail
    assert vid


def test_web_survey_answer_and_change(app, client, auth):
    vid = auth.volunteer()
    with app.app_context():
        r = create_round(db.session, "春节后")
    me = client.get("/me").get_data(as_text=True)
    assert "去作答" in me
    token = csrf_from(client, f"/me/survey/{r.id}")
    client.post(f"/me/survey/{r.id}", data={"csrf_token": token, "score": "5", "comment": "装备很好"})
    client.post(f"/me/survey/{r.id}", data={"csrf_token": token, "score": "4"})
    with app.app_context():
        a = db.session.scalar(select(SurveyAnswer))
        assert (a.volunteer_id, a.score, a.channel) == (vid, 4, "web")
        # comments are appended rows (issue 15 item 3): changing the score keeps the comment
        assert [c.text for c in comments(db.session, r.id, vid)] == ["装备很好"]
    bad = client.post(f"/me/survey/{r.id}", data={"csrf_token": token, "score": "9"})
    assert "1 到 5" in bad.get_data(as_text=True)


def test_telegram_linking_from_the_web(app, client, auth):
    vid = auth.volunteer()
    off = client.get("/me").get_data(as_text=True)
    assert "暂未开通" in off
    with app.app_context():
        set_setting(db.session, TELEGRAM_BOT_USERNAME, "pingan_test_bot", by="test")
    token = csrf_from(client, "/me")
    page = client.post("/me/telegram", data={"csrf_token": token}).get_data(as_text=True)
    assert "https://t.me/pingan_test_bot?start=" in page and "data:image/png" in page
    with app.app_context():
        db.session.add(ChatLink(chat_id=4242, volunteer_id=vid))
        db.session.commit()
    assert "解除绑定" in client.get("/me").get_data(as_text=True)
    client.post("/me/telegram/unlink", data={"csrf_token": token})
    with app.app_context():
        assert db.session.scalar(select(ChatLink.unlinked_at)) is not None

    coord = app.test_client()
    Auth(app, coord).login("c2")
    t2 = csrf_from(coord, "/coord/notices/telegram/me")
    page = coord.post(f"/coord/notices/telegram/volunteer/{vid}", data={"csrf_token": t2}).get_data(as_text=True)
    assert "https://t.me/pingan_test_bot?start=" in page
    mine = coord.post("/coord/notices/telegram/me", data={"csrf_token": t2}).get_data(as_text=True)
    assert "https://t.me/pingan_test_bot?start=" in mine


def test_coordinator_survey_page(app, client, auth):
    _volunteers(app, 2)
    auth.login()
    token = csrf_from(client, "/coord/notices/surveys")
    client.post("/coord/notices/surveys", data={"csrf_token": token, "name": "二季度"})
    page = client.get("/coord/notices/surveys").get_data(as_text=True)
    assert "二季度" in page and "0 / 2" in page
    with app.app_context():
        from models import SurveyRound
        rid = db.session.scalar(select(SurveyRound.id))
    sent = client.post(f"/coord/notices/surveys/{rid}/send", data={"csrf_token": token}, follow_redirects=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(OutboxItem.id))) == 2
    # The same honest reach as a notice: neither volunteer has a channel, so only the web inbox.
    text = sent.get_data(as_text=True)
    assert "已发送 2 人，2 人未绑定任何渠道" in text and "已排队" not in text


def test_the_notice_page_shows_recipients_a_page_at_a_time(app, client, auth):
    """50,000 recipients must not render at once: the page lists 100 with a pager, counts everyone."""
    from services.messaging import post_message
    from services.outbox import Recipient

    auth.login()
    with app.app_context():
        vols = [Volunteer(name=f"戊{i:03d}", phone=f"1371111{i:04d}", team="塘口居委", joined_on=date(2026, 1, 1))
                for i in range(130)]
        db.session.add_all(vols)
        db.session.flush()
        mid = post_message(db.session, kind="notice", title="通知", body="今晚巡逻", dedupe_key="big",
                           recipients=[Recipient(volunteer_id=v.id) for v in vols]).message_id
    first = client.get(f"/coord/notices/{mid}").get_data(as_text=True)
    assert "收件人 130" in first and first.count("戊") == 100 and 'id="delivery-pager"' in first
    assert 'id="delivery-pager-top"' in first  # above the list too: 100 rows are long on a phone
    assert "戊000" in first and "戊129" not in first
    second = client.get(f"/coord/notices/{mid}?page=2").get_data(as_text=True)
    assert second.count("戊") == 30 and "戊129" in second and "戊000" not in second
    unread = client.get(f"/coord/notices/{mid}?show=unread&page=2").get_data(as_text=True)
    assert unread.count("戊") == 30
    assert client.get(f"/coord/notices/{mid}?page=x").status_code == 200


def test_resending_to_the_unread_is_offered_only_when_a_push_channel_exists(app, client, auth):
    """With no Telegram link, no SMS and no group robot, a resend reaches nobody: the page says so
    instead of offering "resend to 3"; once a chat is linked, the button asks before it sends."""
    from datetime import datetime, timezone

    from models import ChatLink
    from services.messaging import post_message
    from services.outbox import Recipient

    ids = _volunteers(app)
    auth.login()
    with app.app_context():
        mid = post_message(db.session, kind="notice", title="通知", body="今晚巡逻", dedupe_key="n1",
                           recipients=[Recipient(volunteer_id=v) for v in ids]).message_id
    page = client.get(f"/coord/notices/{mid}").get_data(as_text=True)
    assert "对未读的" not in page and "都还没有设置" in page
    with app.app_context():
        db.session.add(ChatLink(chat_id=9001, volunteer_id=ids[0], linked_at=datetime.now(timezone.utc)))
        db.session.commit()
    page = client.get(f"/coord/notices/{mid}").get_data(as_text=True)
    assert "对未读的 3 人改用其他渠道重发" in page and "data-confirm=" in page
