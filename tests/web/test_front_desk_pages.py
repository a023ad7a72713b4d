"""The web side of the front desk: confirm / 请假 on /me (plain POST forms with CSRF), the leave
list on the board, a coordinator's own inbox, the office phone and a leader's team settings."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from extensions import db
from models import Assignment, Event, Message, MessageRecipient, PatrolPoint, Shift, User
from services.settings import OFFICE_PHONE, get_setting
from tests.conftest import csrf_from


def _shift(app, vol_id: int, *, starts_in: timedelta) -> int:
    now = datetime.now(timezone.utc)
    with app.app_context():
        event = Event(name="元宵节", starts_on=date(2026, 1, 1), ends_on=date(2099, 1, 1))
        point = PatrolPoint(code="P9", name="浦锦路口", radius_m=100)
        db.session.add_all([event, point])
        db.session.flush()
        shift = Shift(event_id=event.id, point_id=point.id, starts_at=now + starts_in,
                      ends_at=now + starts_in + timedelta(hours=3), capacity=5)
        db.session.add(shift)
        db.session.flush()
        db.session.add(Assignment(shift_id=shift.id, volunteer_id=vol_id))
        db.session.commit()
        return shift.id


def test_me_confirm_leave_and_undo_need_csrf_and_reach_the_office(app, client, auth):
    auth.user("coord", "coordinator")
    vol = auth.volunteer()
    shift = _shift(app, vol, starts_in=timedelta(hours=5))
    page = client.get("/me").get_data(as_text=True)
    assert "已安排" in page and f"/me/shifts/{shift}/leave" in page and "onclick" not in page
    token = csrf_from(client, "/me")
    assert client.post(f"/me/shifts/{shift}/leave").status_code == 400  # no CSRF token: refused
    resp = client.post(f"/me/shifts/{shift}/leave", data={"csrf_token": token})
    assert resp.status_code == 302
    page = client.get("/me").get_data(as_text=True)
    assert "已请假" in page and "撤销请假" in page
    with app.app_context():
        assert db.session.scalar(select(Assignment.status)) == "declined"
        coord = db.session.scalar(select(User.id).where(User.username == "coord"))
        assert db.session.scalar(select(MessageRecipient.user_id).join(Message).where(Message.kind == "leave")) == coord
    client.post(f"/me/shifts/{shift}/undo-leave", data={"csrf_token": token})
    client.post(f"/me/shifts/{shift}/confirm", data={"csrf_token": token})
    with app.app_context():
        assert db.session.scalar(select(Assignment.status)) == "confirmed"
    assert client.post(f"/me/shifts/{shift}/explode", data={"csrf_token": token}).status_code == 404


def test_flipping_leave_on_me_is_rate_limited_per_volunteer_and_makes_one_message(app, client, auth):
    """Review item 14: a volunteer flipping 请假 / 撤销请假 cannot flood the office."""
    auth.user("coord", "coordinator")
    vol = auth.volunteer()
    shift = _shift(app, vol, starts_in=timedelta(hours=5))
    token = csrf_from(client, "/me")
    codes = [client.post(f"/me/shifts/{shift}/{'leave' if i % 2 == 0 else 'undo-leave'}",
                         data={"csrf_token": token}).status_code for i in range(12)]
    assert codes[:10] == [302] * 10 and codes[10:] == [429, 429]
    with app.app_context():
        assert len(db.session.scalars(select(Message.id).where(Message.kind == "leave")).all()) <= 2  # one per window
    other = app.test_client()  # another volunteer behind the same address is not held back
    from tests.conftest import Auth
    vol2 = Auth(app, other).volunteer(name="李四", phone="13900000002", vest_no="PJ-0002")
    with app.app_context():
        db.session.add(Assignment(shift_id=shift, volunteer_id=vol2))
        db.session.commit()
    assert other.post(f"/me/shifts/{shift}/leave", data={"csrf_token": csrf_from(other, "/me")}).status_code == 302


def test_me_leave_after_the_start_is_refused_with_the_phone(app, client, auth):
    from services.settings import set_setting

    vol = auth.volunteer()
    shift = _shift(app, vol, starts_in=timedelta(minutes=-5))
    with app.app_context():
        set_setting(db.session, OFFICE_PHONE, "021-5888 0000", by="test")
    page = client.get("/me").get_data(as_text=True)
    assert "进行中" in page and f"/me/shifts/{shift}/leave" not in page and "021-5888 0000" in page
    token = csrf_from(client, "/me")
    resp = client.post(f"/me/shifts/{shift}/leave", data={"csrf_token": token}, follow_redirects=True)
    assert "班次已开始，请直接联系平安办" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Assignment.status)) == "assigned"


def test_board_lists_leave_and_the_inbox_marks_read_only_on_post(app, client, auth):
    vol = auth.volunteer(name="钱二")
    shift = _shift(app, vol, starts_in=timedelta(hours=5))
    client.post(f"/me/shifts/{shift}/leave", data={"csrf_token": csrf_from(client, "/me")})
    client.post("/me/signout", data={"csrf_token": csrf_from(client, "/me")})
    # A coordinator who existed when the leave was asked for got it.
    with app.app_context():
        from services.assignments import request_leave, undo_leave
        from services.users import create_user
        create_user(db.session, "late", "password-123", "coordinator")
        undo_leave(db.session, shift, vol)
        request_leave(db.session, shift, vol)
    client.post("/coord/login", data={"username": "late", "password": "password-123", "csrf_token": csrf_from(client)})
    board = client.get("/coord/board/").get_data(as_text=True)
    assert "钱二" in board.split('id="leave"')[1]
    inbox = client.get("/coord/inbox/").get_data(as_text=True)
    assert "请假：钱二" in inbox and "全部标为已读" in inbox
    with app.app_context():
        assert db.session.scalar(select(MessageRecipient.read_at).where(MessageRecipient.user_id.is_not(None))) is None
    with app.app_context():
        ids = [str(i) for i in db.session.scalars(select(MessageRecipient.message_id).where(
            MessageRecipient.user_id.is_not(None)))]
    client.post("/coord/inbox/read", data={"csrf_token": csrf_from(client, "/coord/inbox/"), "message_id": ids})
    assert "全部标为已读" not in client.get("/coord/inbox/").get_data(as_text=True)


def test_admin_sets_the_office_phone_and_a_leaders_team(app, client, auth):
    auth.login("boss", "admin")
    with app.app_context():
        from services.users import create_user
        leader = create_user(db.session, "lead", "password-123", "leader").id
    token = csrf_from(client, "/coord/admin/")
    bad = client.post("/coord/admin/settings", data={"csrf_token": token, "office_phone": "<script>"})
    assert bad.status_code == 400
    client.post("/coord/admin/settings", data={"csrf_token": token, "office_phone": "021-5888 0000",
                                               "self_service_signin": "1"})
    client.post(f"/coord/admin/accounts/{leader}", data={"csrf_token": token, "team": "塘口居委"})
    with app.app_context():
        assert get_setting(db.session, OFFICE_PHONE) == "021-5888 0000"
        assert db.session.get(User, leader).team == "塘口居委"


def test_web_notice_refuses_a_long_text_with_its_length_and_reports_reach(app, client, auth):
    import re

    auth.volunteer()  # signed-in "phone" of one volunteer, not linked to Telegram
    auth.login("zhang", "coordinator")
    token = csrf_from(client, "/coord/notices/new")
    long = client.post("/coord/notices/preview", data={"csrf_token": token, "text": "巡" * 2500, "audience": "all"})
    page = long.get_data(as_text=True)
    assert long.status_code == 400 and "2,500 字，最多 2,000 字" in page and "巡" * 2500 in page  # the text is kept
    page = client.post("/coord/notices/preview", data={"csrf_token": token, "text": "今晚加强巡逻",
                                                       "audience": "all"}).get_data(as_text=True)
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page).group(1)
    sent = client.post("/coord/notices/send", data={"csrf_token": token, "text": "今晚加强巡逻", "audience": "all",
                                                    "nonce": nonce}, follow_redirects=True).get_data(as_text=True)
    assert "已发送 1 人，1 人未绑定任何渠道，只能在网页消息中看到" in sent  # issue 12 item 4 wording
