"""Channel routing, SMS limits and cap, costs in the budget (indicator 1), survey links, WeCom robots."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import (ChatLink, ContactPreference, DeliveryAttempt, Expenditure, Message, OutboxItem, SurveyAnswer,
                    TeamRobot, User, Volunteer)
from services.channels import settings as cs
from services.channels.costs import cost_status, double_count_warnings, maybe_warn_office, sync_month_expenditure
from services.channels.office import save_settings
from services.channels.prefs import my_preferences, set_preferences
from services.channels.sms_jobs import SmsDecision, SmsJob, prepare_sms
from services.channels.survey_links import resolve_survey_token, survey_token
from services.channels.wecom import clip_bytes, mask_webhook, set_team_robot, validate_webhook
from services.clock import fixed_clock
from services.errors import DomainError
from services.indicators import compute_indicators
from services.messaging import Audience, delivery_page, post_message, send_notice
from services.outbox import Recipient, claim_due, mark_sent
from services.programme import add_expenditure
from services.sms.templates import segments
from services.surveys import answer, create_round, results
from tests.conftest import utc
from tests.e2e.test_channels_e2e import TEMPLATE_TEXT

NOW = utc(2027, 3, 10, 2)
CLOCK = fixed_clock(NOW)


def enable(session, **extra):
    for key, value in {"sms_enabled": "1", "sms_signature": "浦锦平安办", "sms_tpl_patrol_notice_code": "SMS_100",
                       "sms_tpl_patrol_notice_text": TEMPLATE_TEXT, "sms_tpl_shift_reminder_code": "SMS_200",
                       "sms_tpl_shift_reminder_text": "班次提醒：${time}，${place}。${link}",
                       "sms_tpl_survey_invite_code": "SMS_300",
                       "sms_tpl_survey_invite_text": "满意度调查（${name}）：点${link}一键作答。", **extra}.items():
        cs.put(session, key, value, by="test")
    session.commit()


@pytest.fixture
def crowd(session):
    """0–1 Telegram; 2–3 SMS; 4 opted out of SMS; 5 prefers SMS first though linked."""
    vols = [Volunteer(name=f"乙{i}", phone=f"1371111000{i}", team="塘口居委" if i < 4 else "丰顺居委",
                      joined_on=date(2026, 1, 1)) for i in range(6)]
    session.add_all(vols)
    session.flush()
    session.add_all([ChatLink(chat_id=7000 + i, volunteer_id=vols[i].id) for i in (0, 1, 5)])
    session.add(ContactPreference(volunteer_id=vols[4].id, sms_opt_out=True))
    session.add(ContactPreference(volunteer_id=vols[5].id, channel_order="sms,telegram"))
    session.commit()
    return vols


def _rows(session):
    return {r.volunteer_id: r for r in session.scalars(select(OutboxItem))}


def test_routes_follow_each_persons_channels_and_choice(session, crowd):
    enable(session)
    send_notice(session, text="今晚加强巡逻", audience=Audience("all"), nonce="n1", created_by_user_id=None, clock=CLOCK)
    rows = _rows(session)
    v = [x.id for x in crowd]
    assert (rows[v[0]].channel, rows[v[0]].route, rows[v[0]].status) == ("telegram", "sms", "pending")
    assert (rows[v[2]].channel, rows[v[2]].route) == ("sms", None)
    assert (rows[v[4]].channel, rows[v[4]].status) == ("web", "not_linked")          # opted out, no Telegram
    assert (rows[v[5]].channel, rows[v[5]].route) == ("sms", "telegram")             # their own order
    payload = rows[v[2]].payload
    assert '"template": "patrol_notice"' in payload and "手机" not in payload


def test_without_sms_configured_nothing_changes(session, crowd):
    send_notice(session, text="今晚加强巡逻", audience=Audience("all"), nonce="n1", created_by_user_id=None, clock=CLOCK)
    statuses = {r.volunteer_id: r.status for r in _rows(session).values()}
    assert sorted(statuses.values()).count("not_linked") == 3


def test_a_team_notice_with_a_group_robot_goes_to_the_group_not_by_sms(session, crowd, cipher):
    enable(session)
    set_team_robot(session, cipher, team="塘口居委", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abcd-1234-efgh",
                   by="test")
    result = send_notice(session, text="塘口今晚加强巡逻", audience=Audience("team", "塘口居委"), nonce="n2",
                         created_by_user_id=None, clock=CLOCK)
    rows = session.scalars(select(OutboxItem).where(OutboxItem.message_id == result.message_id)).all()
    post = [r for r in rows if r.team]
    assert len(post) == 1 and post[0].channel == "wecom" and post[0].volunteer_id is None
    people = {r.volunteer_id: r for r in rows if r.volunteer_id}
    assert people[crowd[0].id].channel == "telegram" and people[crowd[0].id].route is None   # no SMS fallback
    assert people[crowd[2].id].status == "team_group"
    shown = {r.name: r.status for r in delivery_page(session, result.message_id).rows}
    assert shown["乙2"] == "team_group" and shown["乙0"] == "pending"
    # Personal messages still go to each person, by SMS too.
    post_message(session, kind="reminder", title="提醒", body="明晚巡逻", recipients=[Recipient(volunteer_id=crowd[2].id)],
                 dedupe_key="r1", clock=CLOCK)
    assert session.scalar(select(OutboxItem.channel).where(OutboxItem.dedupe_key.like("msg:%:v%"),
                                                          OutboxItem.volunteer_id == crowd[2].id,
                                                          OutboxItem.bulk.is_(False))) == "sms"


def test_webhook_urls_are_only_accepted_under_the_wecom_host(session, cipher):
    good = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    assert validate_webhook(good) == good
    for bad in ("http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", "https://qyapi.weixin.qq.com.evil.cn/cgi-bin/webhook/send?key=a",
                "https://10.0.0.1/cgi-bin/webhook/send?key=abc", "https://qyapi.weixin.qq.com@10.0.0.1/cgi-bin/webhook/send?key=a",
                "https://qyapi.weixin.qq.com/cgi-bin/other?key=abc", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key="):
        with pytest.raises(DomainError):
            validate_webhook(bad)
    assert "693a" in mask_webhook(good) and "0ec2sifa5aaa" not in mask_webhook(good)
    set_team_robot(session, cipher, team="塘口居委", url=good, by="t")
    row = session.scalar(select(TeamRobot))
    assert good.encode() not in bytes(row.webhook_enc) and cipher.decrypt(row.webhook_enc) == good
    assert len(clip_bytes("巡" * 1000).encode()) <= 2048


def test_segments_count_the_signature():
    assert segments("浦锦平安办", "字" * 63) == 1          # 【浦锦平安办】 is 7 characters: 70 in all
    assert segments("浦锦平安办", "字" * 64) == 2
    assert segments("浦锦平安办", "字" * 127) == 2 and segments("浦锦平安办", "字" * 128) == 3


def _claim_sms(session):
    return claim_due(session, worker="t", channel="sms", clock=CLOCK)


def test_the_monthly_cap_stops_bulk_sms_but_not_shift_reminders(session, crowd):
    enable(session, sms_monthly_cap="0.10", sms_unit_price="0.05")
    send_notice(session, text="今晚加强巡逻", audience=Audience("team", "塘口居委"), nonce="n3", created_by_user_id=None,
                clock=CLOCK)
    post_message(session, kind="reminder", title="今晚巡逻提醒", body="19:00 浦锦路", dedupe_key="rem:1",
                 recipients=[Recipient(volunteer_id=crowd[3].id)], sms_params={"time": "03-10 19:00", "place": "浦锦路"},
                 clock=CLOCK)
    session.execute(DeliveryAttempt.__table__.insert().values(
        outbox_id=session.scalar(select(OutboxItem.id).limit(1)), channel="sms", outcome="sent", segments=2,
        cost=Decimal("0.10"), attempted_at=NOW))  # this month's SMS so far: the cap is reached
    session.commit()
    decisions = {}
    for item in _claim_sms(session):
        decisions[item.volunteer_id, item.bulk] = prepare_sms(session, item, base_url="http://pingan.test", secret="s",
                                                               clock=CLOCK)
    notice = decisions[crowd[2].id, True]
    assert isinstance(notice, SmsDecision) and notice.reason == "monthly SMS cap reached"
    reminder = decisions[crowd[3].id, False]
    assert isinstance(reminder, SmsJob) and reminder.params["time"] == "03-10 19:00"
    assert reminder.params["link"].startswith("http://pingan.test/i/")
    assert session.scalar(select(OutboxItem.status).where(OutboxItem.volunteer_id == crowd[2].id,
                                                         OutboxItem.bulk.is_(True))) == "unreachable"


def test_per_number_limits(session, crowd):
    enable(session, sms_per_number_daily="1")
    for n in range(2):
        post_message(session, kind="reminder", title="提醒", body="x", dedupe_key=f"rem:{n}",
                     recipients=[Recipient(volunteer_id=crowd[2].id)], clock=CLOCK)
    first, second = _claim_sms(session)
    job = prepare_sms(session, first, base_url="http://x", secret="s", clock=CLOCK)
    mark_sent(session, first.id, external_id="b1", provider="aliyun", segments=job.segments, cost=job.cost, clock=CLOCK)
    decision = prepare_sms(session, second, base_url="http://x", secret="s", clock=CLOCK)
    assert isinstance(decision, SmsDecision) and decision.reason == "per-number daily SMS limit reached"


def test_the_months_sms_cost_is_a_work_fund_expenditure_and_counts_in_indicator_1(session, crowd):
    enable(session, sms_unit_price="0.05")
    post_message(session, kind="notice", title="通知", body="x", dedupe_key="c1",
                 recipients=[Recipient(volunteer_id=v.id) for v in crowd[2:4]], clock=CLOCK)
    for item in _claim_sms(session):
        job = prepare_sms(session, item, base_url="http://x", secret="s", clock=CLOCK)
        mark_sent(session, item.id, external_id="b", provider="aliyun", segments=job.segments, cost=job.cost, clock=CLOCK)
    add_expenditure(session, year=2027, line="work_fund", spent_on=date(2027, 3, 1), amount=Decimal("100"),
                    description="慰问品")
    row = sync_month_expenditure(session, day=date(2027, 3, 10), provider="aliyun")
    assert row.amount == Decimal("0.10") and row.line == "work_fund" and row.auto_key == "messaging:2027-03"
    assert row.spent_on == date(2027, 3, 31) and row.payee == "阿里云"
    sync_month_expenditure(session, day=date(2027, 3, 10), provider="aliyun")  # rewritten, not added
    assert session.scalar(select(func.count(Expenditure.id)).where(Expenditure.auto_key.is_not(None))) == 1
    indicator = next(r for r in compute_indicators(session, 2027, today=date(2027, 3, 10)).rows if r.number == 1)
    assert indicator.value == pytest.approx(100.10)
    assert double_count_warnings(session, 2027) == []
    add_expenditure(session, year=2027, line="work_fund", spent_on=date(2027, 3, 31), amount=Decimal("0.10"),
                    description="3月短信费", payee="阿里云")
    assert [e.description for e in double_count_warnings(session, 2027)] == ["3月短信费"]


def test_the_office_is_warned_once_before_the_cap(session, crowd):
    enable(session, sms_monthly_cap="1", sms_warn_ratio="0.5")
    session.add(User(username="admin1", role="admin", password_hash="x"))
    session.commit()
    item_id = session.scalar(select(OutboxItem.id)) or None
    assert not maybe_warn_office(session, clock=CLOCK)
    post_message(session, kind="notice", title="通知", body="x", dedupe_key="c2",
                 recipients=[Recipient(volunteer_id=crowd[2].id)], clock=CLOCK)
    item_id = session.scalar(select(OutboxItem.id))
    session.add(DeliveryAttempt(outbox_id=item_id, channel="sms", outcome="sent", segments=12, cost=Decimal("0.6"),
                                attempted_at=NOW))
    session.commit()
    assert cost_status(session, clock=CLOCK).warning and not cost_status(session, clock=CLOCK).capped
    assert maybe_warn_office(session, clock=CLOCK) and not maybe_warn_office(session, clock=CLOCK)
    assert session.scalar(select(func.count(Message.id)).where(Message.kind == "system")) == 1


def test_survey_links_are_personal_and_expire_with_the_round(session, crowd):
    r = create_round(session, "2027 春季", closes_at=utc(2027, 3, 20), clock=CLOCK)
    token = survey_token("secret", r.id, crowd[2].id)
    link = resolve_survey_token(session, "secret", token, clock=CLOCK)
    assert link.volunteer_id == crowd[2].id and link.round_id == r.id
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    for bad in (forged, survey_token("other", r.id, crowd[2].id), "x-y-z", ""):
        with pytest.raises(DomainError):
            resolve_survey_token(session, "secret", bad, clock=CLOCK)
    with pytest.raises(DomainError) as exc:
        resolve_survey_token(session, "secret", token, clock=fixed_clock(utc(2027, 3, 21)))
    assert exc.value.code == "survey_closed"
    answer(session, r.id, crowd[2].id, 5, channel="sms", clock=CLOCK)
    answer(session, r.id, crowd[2].id, 3, channel="telegram", clock=CLOCK)     # replaces, not adds
    assert results(session, r.id).responses == 1
    assert session.scalar(select(SurveyAnswer.score)) == 3


def test_preferences_and_settings_validation(session, crowd):
    set_preferences(session, crowd[0].id, order="sms,telegram", sms_opt_out=True, clock=CLOCK)
    view = my_preferences(session, crowd[0].id)
    assert view.effective == ["sms", "telegram"] and view.sms_opt_out
    with pytest.raises(DomainError):
        set_preferences(session, crowd[0].id, order="fax", sms_opt_out=False, clock=CLOCK)
    form = {"sms_enabled": "1", "sms_signature": "浦锦平安办", "channel_order": "telegram,sms", "sms_unit_price": "0.045",
            "sms_monthly_cap": "300", "sms_warn_ratio": "0.8", "sms_per_number_daily": "10",
            "sms_per_number_interval": "60", "sms_daily_limit": "5000",
            "sms_tpl_patrol_notice_code": "SMS_1", "sms_tpl_patrol_notice_text": "通知：${title}"}  # no ${link}
    with pytest.raises(DomainError) as exc:
        save_settings(session, form, by="t")
    assert exc.value.code == "template_params" and cs.get(session, "sms_signature") == ""  # nothing saved
    form["sms_tpl_patrol_notice_text"] = TEMPLATE_TEXT
    save_settings(session, form, by="t")
    assert cs.get(session, "sms_tpl_patrol_notice_code") == "SMS_1" and cs.get(session, "sms_enabled") == "1"


def test_the_preview_says_how_the_notice_will_reach_people(session, crowd, cipher):
    from services.messaging import preview_notice

    enable(session)
    everyone = preview_notice(session, Audience("all"))
    assert (everyone.recipients, everyone.linked, everyone.by_sms, everyone.web_only) == (6, 3, 3, 1)
    set_team_robot(session, cipher, team="塘口居委", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1",
                   by="t")
    team = preview_notice(session, Audience("team", "塘口居委"))
    assert team.team_group and team.by_sms == 0 and team.web_only == 2


def test_enqueue_restricted_to_one_channel_never_aims_at_a_channel_the_person_lacks(session, crowd):
    from services.outbox import Outgoing, enqueue_many

    enable(session)
    sms = {"template": "patrol_notice", "params": {"title": "t"}}
    enqueue_many(session, [Outgoing("k-tg", Recipient(volunteer_id=crowd[2].id), {"text": "x", "sms": sms})],
                 channel="telegram", now=NOW)
    row = session.scalar(select(OutboxItem).where(OutboxItem.dedupe_key == "k-tg"))
    assert row.channel == "web" and row.status == "not_linked" and row.chat_id is None
