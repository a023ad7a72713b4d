"""Issue 12 over HTTP: the night board, the review queue, people pages, and who may use them."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Assignment, Attendance, Event, Message, PatrolPoint, ScanRecord, Shift, Volunteer
from services.clock import from_local
from tests.conftest import csrf_from
from tests.live import MovableClock

POINT = (31.0689, 121.5049)


@pytest.fixture
def night(app, session):
    clk = MovableClock(from_local(datetime(2027, 2, 5, 18, 20)))
    app.config["CLOCK"] = clk
    event = Event(name="除夕", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 5))
    point = PatrolPoint(code="P1", name="一号点", lat=POINT[0], lon=POINT[1], radius_m=100)
    here = Volunteer(name="钱七", phone="13900000007", vest_no="PJ-0007", team="塘口居委", joined_on=date(2026, 1, 1))
    away = Volunteer(name="孙八", phone="13900000008", vest_no="PJ-0008", team="丰顺居委", joined_on=date(2026, 1, 1))
    session.add_all([event, point, here, away])
    session.flush()
    shift = Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                  ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=5)
    session.add(shift)
    session.flush()
    session.add_all([Assignment(shift_id=shift.id, volunteer_id=here.id), Assignment(shift_id=shift.id, volunteer_id=away.id)])
    att = Attendance(volunteer_id=here.id, event_id=event.id, shift_id=shift.id, point_id=point.id, status="open",
                     check_in_at=from_local(datetime(2027, 2, 5, 18, 2)), work_date=date(2027, 2, 5),
                     review_status="flagged", flags="outside_geofence")
    session.add(att)
    session.flush()
    session.add(ScanRecord(volunteer_id=here.id, point_id=point.id, shift_id=shift.id, attendance_id=att.id,
                           scanned_at=att.check_in_at, action="check_in", code="ok",
                           lat=POINT[0] + 160 / 111_195, lon=POINT[1], accuracy_m=30, distance_m=160))
    session.commit()
    yield {"clock": clk, "shift_id": shift.id, "here": here.id, "away": away.id, "att_id": att.id}
    app.config.pop("CLOCK", None)


def test_board_lists_the_missing_with_phone_and_reminds_once(client, auth, night, app):
    auth.login()
    page = client.get("/coord/board/").get_data(as_text=True)
    assert 'href="tel:13900000008"' in page and "孙八" in page and "丰顺居委" in page
    missing = page[page.index('id="missing"'):page.index("</section>", page.index('id="missing"'))]
    assert "钱七" not in missing  # checked in, so not missing
    token = csrf_from(client, "/coord/board/")
    url = f"/coord/board/remind/{night['shift_id']}/{night['away']}"
    # Back at the row (a long board scrolled to the top lost the place); it says 已提醒 there.
    first = client.post(url, data={"csrf_token": token})
    assert first.headers["Location"].endswith(f"/coord/board/#m-{night['shift_id']}-{night['away']}")
    board = client.get("/coord/board/").get_data(as_text=True)
    assert f'id="m-{night["shift_id"]}-{night["away"]}"' in board
    # No Telegram, no SMS: the board does not say "sent" and leave the coordinator waiting.
    assert "提醒只进了网页消息" in board and "仅网页消息，请打电话" in board and "已发送到岗提醒" not in board
    assert "不再重复发送" in client.post(url, data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id)).where(Message.kind == "reminder")) == 1
    assert "已提醒 18:20" in client.get("/coord/board/rows").get_data(as_text=True)


def test_dashboard_opens_on_today(client, auth, night):
    auth.login()
    page = client.get("/coord/").get_data(as_text=True)
    assert "今晚的班次" in page and "一号点" in page and "待核对记录" in page and "发送失败的消息" in page
    assert 'class="count"' in page  # the waiting count in the menu
    assert "另有" not in page   # everyone on patrol is on tonight's shift: one count, nothing to explain


def test_the_dashboard_says_why_on_patrol_and_present_differ(client, auth, night, session):
    """A walk-in is on patrol but on no shift tonight: the two counts differ, and the page says why."""
    walk_in = Volunteer(name="周九", phone="13900000009", joined_on=date(2026, 1, 1))
    session.add(walk_in)
    session.flush()
    session.add(Attendance(volunteer_id=walk_in.id, point_id=session.get(Shift, night["shift_id"]).point_id,
                           status="open", check_in_at=from_local(datetime(2027, 2, 5, 18, 10)),
                           work_date=date(2027, 2, 5)))
    session.commit()
    auth.login()
    page = client.get("/coord/").get_data(as_text=True)
    assert "在岗 1 人；另有 1 人不在今晚的班次名单上、也已签到（临时到岗等），所以上方“正在巡逻”是 2 人" in page


def test_review_queue_shows_why_and_decides_in_bulk(client, auth, night, app):
    auth.login()
    page = client.get("/coord/attendance/review").get_data(as_text=True)
    assert "距点位 160 米，定位精度 30 米" in page
    assert "<svg" in page and "https://uri.amap.com/marker?position=" in page
    token = csrf_from(client, "/coord/attendance/review")
    resp = client.post("/coord/attendance/review", data={"csrf_token": token, "decision": "rejected",
                                                         "ids": [night["att_id"]], "reason": ""},
                       follow_redirects=True)
    assert "不通过时请填写原因" in resp.get_data(as_text=True)
    resp = client.post("/coord/attendance/review", data={"csrf_token": token, "decision": "approved",
                                                         "ids": [night["att_id"]], "back": "/coord/attendance/review"},
                       follow_redirects=True)
    assert "已审核 1 条" in resp.get_data(as_text=True) and "没有待核对的记录" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Attendance, night["att_id"]).review_status == "approved"  # before check-out


def test_team_leaders_see_only_the_board(client, auth, night, app):
    auth.login("leader1", role="leader")
    assert client.get("/coord/board/").status_code == 200
    assert client.get("/coord/board/rows").status_code == 200
    page = client.get("/coord/board/").get_data(as_text=True)
    assert "待核对" not in page  # no review link or count in a leader's menu
    for path in ("/coord/attendance/review", "/coord/volunteers/?band=0-3"):
        assert client.get(path).status_code == 403, path
    token = csrf_from(client, "/coord/board/")
    assert client.post("/coord/attendance/review", data={"csrf_token": token, "decision": "approved",
                                                         "ids": [night["att_id"]]}).status_code == 403
    # the board's own actions are theirs: remind
    resp = client.post(f"/coord/board/remind/{night['shift_id']}/{night['away']}", data={"csrf_token": token})
    assert resp.status_code == 302
    # and checking in on someone's behalf, which a coordinator then reviews (a leader's account
    # reaches every team's volunteers on the board)
    with app.app_context():
        point_id = db.session.scalar(select(PatrolPoint.id))
    client.post("/coord/board/check-in", data={"csrf_token": token, "volunteer": "PJ-0008", "point_id": point_id})
    with app.app_context():
        att = db.session.scalar(select(Attendance).where(Attendance.volunteer_id == night["away"]))
        assert att.source == "proxy" and att.review_status == "flagged" and "proxy_by_leader" in att.flags


def test_signed_out_visitors_are_sent_to_sign_in(client, night):
    for path in ("/coord/board/", "/coord/board/rows", "/coord/attendance/review"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/coord/login" in resp.headers["Location"], path


def test_people_pages(client, auth, night, app):
    auth.login()
    token = csrf_from(client, "/coord/volunteers/")
    page = client.post(f"/coord/volunteers/{night['away']}/login-link", data={"csrf_token": token}).get_data(as_text=True)
    assert "data-copy=\"link-message\"" in page and "孙八 您好" in page and "js/copy.js" in page
    assert "onclick" not in page
    listing = client.get("/coord/volunteers/?not_signed_in=1").get_data(as_text=True)
    assert "孙八" in listing and "钱七" in listing
    assert "孙八" not in client.get("/coord/volunteers/?band=3-6").get_data(as_text=True)
    from models import Device
    from tests.services.test_people import ANDROID_WECHAT
    with app.app_context():
        db.session.add(Device(volunteer_id=night["here"], token_hash="z" * 64, method="link", user_agent=ANDROID_WECHAT,
                              last_seen_at=from_local(datetime(2027, 2, 5, 13, 7))))
        db.session.commit()
    detail = client.get(f"/coord/volunteers/{night['here']}").get_data(as_text=True)
    assert "按活动" in detail and "Android · Chrome 131 · 微信" in detail and "最近使用 02-05 13:07" in detail
