"""Pages for the channels: the volunteer's choice, the admin's settings, SMS links, the budget."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from extensions import db
from models import ContactPreference, DeliveryAttempt, Expenditure, OutboxItem, TeamRobot
from services.channels import settings as cs
from services.channels.costs import sync_month_expenditure
from services.channels.survey_links import survey_token
from services.messaging import Audience, send_notice
from services.programme import add_expenditure
from services.surveys import create_round
from tests.conftest import csrf_from
from tests.e2e.test_channels_e2e import TEMPLATE_TEXT, enable_sms


def test_a_volunteer_opts_out_of_sms_and_picks_an_order_on_me(app, client, auth):
    vid = auth.volunteer()
    page = client.get("/me").get_data(as_text=True)   # no Telegram, no SMS: nothing to choose yet
    assert "接收方式" in page and "目前只有网页消息" in page and "不接收短信" not in page and 'name="order"' not in page
    enable_sms(app)
    page = client.get("/me").get_data(as_text=True)
    assert "不接收短信" in page and 'name="order"' in page and "目前只有网页消息" not in page
    resp = client.post("/me/channels", data={"csrf_token": csrf_from(client, "/me"), "order": "sms,telegram",
                                             "sms_opt_out": "1"})
    assert resp.status_code == 302
    with app.app_context():
        pref = db.session.get(ContactPreference, vid)
        assert pref.sms_opt_out and pref.channel_order == "sms,telegram"
    resp = client.post("/me/channels", data={"csrf_token": csrf_from(client, "/me"), "order": "pigeon"}, follow_redirects=True)
    assert "未知的接收顺序" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ContactPreference, vid).channel_order == "sms,telegram"  # unchanged


def test_messaging_settings_are_for_admins(app, client, auth):
    auth.login()
    assert client.get("/coord/messaging").status_code == 403


def test_the_admin_fills_in_the_sms_settings_and_a_robot(app, client, auth):
    auth.login("boss", role="admin")
    page = client.get("/coord/messaging").get_data(as_text=True)
    assert "短信签名" in page and "未配置" in page and "班次提醒" in page
    token = csrf_from(client, "/coord/messaging")
    form = {"csrf_token": token, "form": "settings", "sms_enabled": "1", "sms_signature": "浦锦平安办",
            "channel_order": "telegram,sms", "sms_unit_price": "0.045", "sms_monthly_cap": "300", "sms_warn_ratio": "0.8",
            "sms_per_number_daily": "10", "sms_per_number_interval": "60", "sms_daily_limit": "5000",
            "sms_tpl_patrol_notice_code": "SMS_1", "sms_tpl_patrol_notice_text": TEMPLATE_TEXT}
    bad = client.post("/coord/messaging", data={**form, "sms_unit_price": "abc"}, follow_redirects=True)
    assert "不是有效的数字" in bad.get_data(as_text=True)
    with app.app_context():
        assert cs.get(db.session, "sms_signature") == ""
    assert client.post("/coord/messaging", data=form).status_code == 302
    with app.app_context():
        assert cs.get(db.session, "sms_tpl_patrol_notice_code") == "SMS_1"
    refused = client.post("/coord/messaging", data={"csrf_token": token, "form": "robot", "team": "塘口居委",
                                                    "url": "http://127.0.0.1:8080/cgi-bin/webhook/send?key=x"},
                          follow_redirects=True)
    assert "企业微信地址" in refused.get_data(as_text=True)
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abcd1234-5678-efgh-ijkl"
    assert client.post("/coord/messaging", data={"csrf_token": token, "form": "robot", "team": "塘口居委",
                                                 "url": url}).status_code == 302
    page = client.get("/coord/messaging").get_data(as_text=True)
    assert "abcd…ijkl" in page and url not in page  # shown masked
    with app.app_context():
        assert db.session.scalar(select(TeamRobot.team)) == "塘口居委"


def test_sms_links(app, client, auth):
    with app.app_context():
        r = create_round(db.session, "春季")
        rid = r.id
    assert client.get("/i/42").headers["Location"].endswith("/me/inbox#m42")
    assert client.get("/s/1-1-notavalidtoken").status_code == 404
    vid = auth.volunteer()
    client.delete_cookie("pv_device")
    token = survey_token(app.config["SECRET_KEY"], rid, vid)
    page = client.get(f"/s/{token}")
    assert page.status_code == 200 and "5 · 非常满意" in page.get_data(as_text=True)
    resp = client.post(f"/s/{token}", data={"csrf_token": csrf_from(client, f"/s/{token}"), "score": "5"})
    assert "已记录您的评价" in resp.get_data(as_text=True)


def test_the_notice_page_shows_how_each_person_was_reached(app, client, auth):
    enable_sms(app)
    vid = auth.volunteer(name="孙八", phone="13900000088")
    auth.login()
    with app.app_context():
        result = send_notice(db.session, text="今晚巡逻", audience=Audience("all"), nonce="x1", created_by_user_id=None)
        item = db.session.scalar(select(OutboxItem).where(OutboxItem.volunteer_id == vid))
        item.status = "sent"
        db.session.add(DeliveryAttempt(outbox_id=item.id, channel="sms", outcome="sent", segments=1, cost=Decimal("0.05"),
                                       attempted_at=item.created_at))
        db.session.commit()
        mid = result.message_id
    page = client.get(f"/coord/notices/{mid}").get_data(as_text=True)
    assert "已送达 · 短信" in page and "短信 1 条，0.05 元" in page


def test_the_budget_page_marks_the_automatic_row_and_warns_of_a_double_count(app, client, auth):
    auth.login()
    with app.app_context():
        db.session.add(Expenditure(year=2027, line="work_fund", spent_on=date(2027, 3, 31), amount=Decimal("12.30"),
                                   description="短信费用 2027-03（自动统计，只读）", payee="阿里云", auto_key="messaging:2027-03"))
        db.session.commit()
        add_expenditure(db.session, year=2027, line="work_fund", spent_on=date(2027, 4, 2), amount=Decimal("12.30"),
                        description="阿里云短信 3 月账单")
        assert sync_month_expenditure(db.session, day=date(2027, 5, 1)) is None  # no SMS in May: no row
    page = client.get("/coord/programme/budget?year=2027").get_data(as_text=True)
    assert "自动 · 只读" in page and 'id="double-count-warning"' in page and "阿里云短信 3 月账单" in page


def test_a_coordinator_sends_a_sign_in_link_by_sms_made_at_send_time(app, client, auth):
    from services.channels.sms_jobs import SmsJob, prepare_sms
    from services.outbox import claim_due

    with app.app_context():
        from models import Volunteer
        vol = Volunteer(name="李九", phone="13900000099", joined_on=date(2026, 1, 1))
        db.session.add(vol)
        db.session.commit()
        vid = vol.id
    auth.login()
    token = csrf_from(client, f"/coord/volunteers/{vid}")
    off = client.post(f"/coord/channels/login-sms/{vid}", data={"csrf_token": token}, follow_redirects=True)
    assert "模板未填写" in off.get_data(as_text=True)
    enable_sms(app, sms_tpl_signin_link_code="SMS_400", sms_tpl_signin_link_text="登录链接：${link}，请勿转发。")
    assert client.post(f"/coord/channels/login-sms/{vid}", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        row = db.session.scalar(select(OutboxItem))
        assert row.channel == "sms" and "/login/" not in row.payload          # no secret stored in the outbox
        item = claim_due(db.session, worker="t", channel="sms")[0]
        job = prepare_sms(db.session, item, base_url="http://pingan.test", secret="s")
        assert isinstance(job, SmsJob) and job.params["link"].startswith("http://pingan.test/login/")
    secret = job.params["link"].rsplit("/", 1)[1]
    assert client.get(f"/login/{secret}").status_code == 200
