"""People pages: a phone in words, hours by campaign, the roster's hours band and sign-in filters."""
from __future__ import annotations

from datetime import date

import pytest

from models import Device, Event, HourAdjustment, User
from services.people import device_label, hours_by_campaign, roster, wechat_message
from services.clock import SHANGHAI
from tests.services.test_checkin import World, local

ANDROID_WECHAT = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.135 "
                  "Mobile Safari/537.36 MicroMessenger/8.0.49.2600(0x28003133) WeChat/arm64 Weixin NetType/WIFI")
IPHONE_WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/WIFI Language/zh_CN")
ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
                  "Mobile Safari/537.36")


@pytest.mark.parametrize("ua, label", [
    (ANDROID_WECHAT, "Android · Chrome 131 · 微信"),
    (ANDROID_CHROME, "Android · Chrome 131"),
    (IPHONE_WECHAT, "iOS 17 · 微信"),
    (None, "未知设备"),
    ("curl/8.0", "curl 8"),
])
def test_device_label(ctx, ua, label):
    assert device_label(ua) == label


@pytest.fixture
def w(session):
    world = World(session)
    world.user = User(username="coord", password_hash="x", role="coordinator")
    session.add(world.user)
    session.commit()
    return world


def test_hours_by_campaign_add_up(w):
    other = Event(name="国庆", starts_on=date(2027, 10, 1), ends_on=date(2027, 10, 7))
    w.session.add(other)
    w.session.commit()
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.shift(w.p1, local(2027, 10, 1, 18), local(2027, 10, 1, 20), event=other)
    v = w.vols[0]
    for a, b in (((2027, 2, 5, 18), (2027, 2, 5, 21)), ((2027, 10, 1, 18), (2027, 10, 1, 20))):
        w.scan(v, w.p1, local(*a))
        w.scan(v, w.p1, local(*b))
    w.session.add(HourAdjustment(volunteer_id=v.id, work_date=date(2027, 3, 1), minutes=30, reason="纸质"))
    w.session.commit()
    lines = hours_by_campaign(w.session, v.id, 2027)
    assert [(x.name, x.records, x.minutes) for x in lines] == [("春节烟花爆竹安全管控", 1, 180), ("国庆", 1, 120),
                                                               ("人工调整", 1, 30)]
    assert hours_by_campaign(w.session, v.id, 2026) == []


def test_roster_filters_by_band_and_sign_in(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 22))
    a, b = w.vols[0], w.vols[1]
    w.scan(a, w.p1, local(2027, 2, 5, 18))
    w.scan(a, w.p1, local(2027, 2, 5, 22))          # 4 h: band 3-6
    w.scan(b, w.p1, local(2027, 2, 5, 18))
    w.scan(b, w.p1, local(2027, 2, 5, 19))          # 1 h: band 0-3
    w.session.add(Device(volunteer_id=a.id, token_hash="x" * 64, method="link", user_agent=ANDROID_CHROME))
    w.session.add(Device(volunteer_id=b.id, token_hash="y" * 64, method="link", revoked_at=local(2027, 2, 6, 9)))
    w.session.commit()
    names = lambda page: [r.volunteer.name for r in page.rows]  # noqa: E731
    assert names(roster(w.session, year=2027, band="3-6")) == ["志愿者0"]
    assert names(roster(w.session, year=2027, band="0-3")) == ["志愿者1"]
    assert len(roster(w.session, year=2027, band="0").rows) == 4
    assert roster(w.session, year=2027, band="6-12").rows == []
    page = roster(w.session, year=2027, not_signed_in=True)
    assert "志愿者0" not in names(page) and "志愿者1" in names(page) and page.total == 5
    first = roster(w.session, year=2027, q="志愿者0").rows[0]
    assert first.signed_in and first.hours == 4.0


def test_wechat_message_has_the_link_and_the_deadline(ctx):
    text = wechat_message("张三", "http://pingan.test/login/abc", local(2027, 2, 5, 18, 30), SHANGHAI)
    assert "张三" in text and "http://pingan.test/login/abc" in text and "02-05 18:30" in text
