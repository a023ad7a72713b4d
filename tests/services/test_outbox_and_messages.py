"""Outbox rules and messaging services, without Telegram."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from bot.sender import Pacer
from models import ChatLink, Message, MessageRecipient, OutboxItem, Volunteer
from services.clock import fixed_clock
from services.errors import DomainError
from services.messaging import (Audience, delivery_counts, inbox, mark_read, post_message, preview_notice,
                                send_notice, unread_count)
from services.outbox import Outgoing, Recipient, claim_due, enqueue_many, mark_retry, mark_sent, mark_unreachable
from services.surveys import answer, create_round, remind_round, results, send_round
from tests.conftest import utc

NOW = utc(2027, 2, 5, 10)


@pytest.fixture
def people(session):
    vols = [Volunteer(name=f"甲{i}", phone=f"1370000000{i}", team="塘口居委" if i < 3 else "丰顺居委",
                      joined_on=date(2026, 1, 1)) for i in range(5)]
    session.add_all(vols)
    session.flush()
    session.add_all([ChatLink(chat_id=9000 + i, volunteer_id=v.id) for i, v in enumerate(vols[:3])])
    session.commit()
    return vols


def test_the_same_notice_nonce_sends_once_and_a_new_nonce_sends_again(session, people):
    first = send_notice(session, text="今晚加强巡逻", audience=Audience("all"), nonce="form-1", created_by_user_id=None)
    again = send_notice(session, text="今晚加强巡逻", audience=Audience("all"), nonce="form-1", created_by_user_id=None)
    assert first.created and not again.created and first.message_id == again.message_id
    assert session.scalar(select(func.count(OutboxItem.id))) == 5
    repeat = send_notice(session, text="今晚加强巡逻", audience=Audience("all"), nonce="form-2", created_by_user_id=None)
    assert repeat.created and session.scalar(select(func.count(OutboxItem.id))) == 10
    statuses = dict(session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all())
    assert statuses == {"pending": 6, "not_linked": 4}


def test_a_job_queueing_the_same_reminder_twice_queues_it_once(session, people):
    r = Recipient(volunteer_id=people[0].id)
    items = [Outgoing("reminder:shift7:v1:24h", r, {"text": "明天 18:00 巡逻"})]
    assert enqueue_many(session, items) == 1
    session.commit()
    assert enqueue_many(session, items + items) == 0
    one = post_message(session, kind="reminder", title="提醒", body="x", recipients=[r], dedupe_key="job:1")
    two = post_message(session, kind="reminder", title="提醒", body="x", recipients=[r], dedupe_key="job:1")
    assert one.queued == 1 and two.queued == 0
    assert session.scalar(select(func.count(Message.id))) == 1


def test_audiences_and_preview(session, people):
    assert preview_notice(session, Audience("team", "塘口居委")).recipients == 3
    assert preview_notice(session, Audience("all")).linked == 3
    people[4].status = "withdrawn"
    session.commit()
    assert preview_notice(session, Audience("all")).recipients == 4
    with pytest.raises(DomainError):
        send_notice(session, text=" ", audience=Audience("all"), nonce="n", created_by_user_id=None)
    with pytest.raises(DomainError):
        send_notice(session, text="x", audience=Audience("team", "不存在"), nonce="n", created_by_user_id=None)


def test_claim_send_retry_and_stale_claims(session, people):
    send_notice(session, text="通知", audience=Audience("all"), nonce="a", created_by_user_id=None, clock=fixed_clock(NOW))
    claimed = claim_due(session, worker="w1", limit=2, clock=fixed_clock(NOW))
    assert len(claimed) == 2 and all(c.chat_id for c in claimed)
    assert len(claim_due(session, worker="w2", limit=10, clock=fixed_clock(NOW))) == 1  # the third linked one
    assert claim_due(session, worker="w2", limit=10, clock=fixed_clock(NOW)) == []
    mark_sent(session, claimed[0].id, external_id="77")
    mark_retry(session, claimed[1].id, error="timeout", at=NOW + timedelta(seconds=30))
    assert claim_due(session, worker="w2", clock=fixed_clock(NOW + timedelta(seconds=10))) == []
    assert [c.id for c in claim_due(session, worker="w2", clock=fixed_clock(NOW + timedelta(seconds=31)))] == [claimed[1].id]
    # a sender that died holding a claim: the row is claimed again after the stale time
    later = NOW + timedelta(minutes=5)
    assert {c.id for c in claim_due(session, worker="w3", clock=fixed_clock(later))} >= {claimed[1].id}


def test_a_claim_takes_at_most_its_limit_whatever_plan_the_database_picks(session, people):
    """PostgreSQL may run an `IN (… LIMIT n FOR UPDATE SKIP LOCKED)` subquery once per row of the
    table (a nested-loop semi-join: it picked that for a fresh outbox with no statistics), and each
    run then skips the rows the last one took: one claim of 50 took a whole 5,000-message notice.
    The planner is pushed to that plan here; the claim must still take 2."""
    for n in range(4):
        send_notice(session, text=f"通知{n}", audience=Audience("all"), nonce=f"plan-{n}", created_by_user_id=None,
                    clock=fixed_clock(NOW))
    pending = session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.status == "pending"))
    assert pending == 12

    def planner_on_that_plan() -> None:
        """SET LOCAL: for the claim's own transaction only (it commits), nothing left on the pooled
        connection for the tests after this one."""
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            for setting in ("enable_hashagg", "enable_hashjoin", "enable_mergejoin", "enable_material", "enable_sort"):
                conn.exec_driver_sql(f"SET LOCAL {setting} = off")
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")

    planner_on_that_plan()
    assert len(claim_due(session, worker="w1", limit=2, clock=fixed_clock(NOW))) == 2
    planner_on_that_plan()
    assert len(claim_due(session, worker="w1", limit=3, clock=fixed_clock(NOW))) == 3
    assert session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.status == "sending")) == 5


def test_blocked_chat_is_marked_unreachable_with_its_pending_rows(session, people):
    send_notice(session, text="一", audience=Audience("all"), nonce="1", created_by_user_id=None)
    send_notice(session, text="二", audience=Audience("all"), nonce="2", created_by_user_id=None)
    item = claim_due(session, worker="w", limit=1)[0]
    mark_unreachable(session, item.id, item.chat_id, error="Forbidden: bot was blocked by the user")
    assert session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.chat_id == item.chat_id,
                                                                  OutboxItem.status == "unreachable")) == 2
    assert session.scalar(select(ChatLink.unreachable_at).where(ChatLink.chat_id == item.chat_id)) is not None
    # the next notice to that person is not even queued for Telegram
    send_notice(session, text="三", audience=Audience("all"), nonce="3", created_by_user_id=None)
    assert session.scalar(select(OutboxItem.status).where(OutboxItem.chat_id == item.chat_id)
                          .order_by(OutboxItem.id.desc()).limit(1)) == "unreachable"


def test_web_inbox_and_read_status(session, people):
    msg = send_notice(session, text="通知正文", audience=Audience("all"), nonce="x", created_by_user_id=None)
    vid = people[4].id  # not linked: the web inbox is how they get it
    # a notice says who sent it (issue 15 item 6); from the CLI or without an account: the office
    assert [i.body for i in inbox(session, vid)] == ["通知正文\n\n—— 平安办"] and unread_count(session, vid) == 1
    mark_read(session, vid, [msg.message_id], clock=fixed_clock(NOW))
    assert unread_count(session, vid) == 0
    counts = delivery_counts(session, msg.message_id)
    assert counts["read"] == 1 and counts["not_linked"] == 2 and counts["pending"] == 3
    assert session.scalar(select(func.count(MessageRecipient.id))) == 5


def test_survey_round_results_and_reminder(session, people):
    r = create_round(session, "一季度", clock=fixed_clock(NOW))
    with pytest.raises(DomainError):
        create_round(session, "一季度")
    assert send_round(session, r.id).created and not send_round(session, r.id).created
    later = fixed_clock(NOW + timedelta(days=1))
    answer(session, r.id, people[0].id, 5, clock=later)
    answer(session, r.id, people[1].id, 4, clock=later)
    answer(session, r.id, people[2].id, 2, clock=later)
    answer(session, r.id, people[2].id, 3, clock=later)  # replaces
    with pytest.raises(DomainError):
        answer(session, r.id, people[3].id, 6, clock=later)
    res = results(session, r.id)
    assert (res.responses, res.eligible, res.satisfied) == (3, 5, 2)
    assert round(res.response_rate, 2) == 0.6 and round(res.satisfaction_rate, 3) == 0.667
    reminder = remind_round(session, r.id)
    assert reminder.recipients == 2 and not remind_round(session, r.id).created


def test_pacer_keeps_to_the_rate_and_the_per_chat_interval():
    now = [0.0]
    pacer = Pacer(rate=5, chat_interval=1.0, clock=lambda: now[0])
    stamps = []

    async def fake_sleep(seconds):
        now[0] += seconds

    async def go():
        import bot.sender as sender_module
        original = sender_module.asyncio.sleep
        sender_module.asyncio.sleep = fake_sleep
        try:
            for i in range(20):
                await pacer.acquire(chat_id=i)
                stamps.append(now[0])
            for _ in range(3):
                await pacer.acquire(chat_id=999)
                stamps.append(now[0])
        finally:
            sender_module.asyncio.sleep = original

    asyncio.run(go())
    from tests.fake_telegram import max_in_window
    assert max_in_window(stamps[:20]) <= 5
    assert stamps[21] - stamps[20] >= 1.0 and stamps[22] - stamps[21] >= 1.0
