"""The transactional outbox: every outgoing message is a row written with the action that causes
it, and a sender drains the rows.

Why: a notice that silently fails to arrive is a safety problem, and a reminder sent twice makes
volunteers mute the bot. A row per (message, person, channel) with a unique dedupe key makes
queueing idempotent; claiming rows in a transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL)
makes sending at-most-once per claim. A sender that dies mid-send leaves rows `sending`; after
`STALE_CLAIM` they are claimed again, so a message that was in flight at the crash may arrive
twice, and nothing is lost.

Channels: a row is one message to one person; `channel` is the channel it is on now and `route`
the ones left to try (see `services.channels.routing`). A permanent failure moves the row to the
next channel (`advance`); every try is a `delivery_attempts` row, so the notice page can say how
a message reached each person, or that it did not.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from models.channels import ATTEMPT_GAVE_UP, ATTEMPT_RETRY, ATTEMPT_SENT, CHANNEL_WEB, DeliveryAttempt
from models.messaging import (CHANNEL_TELEGRAM, OUT_FAILED, OUT_NOT_LINKED, OUT_PENDING, OUT_SENDING, OUT_SENT, OUT_UNREACHABLE,
                              ChatLink, OutboxItem)
from services.clock import Clock, system_clock
from services.transactions import write_transaction

O = OutboxItem.__table__
L = ChatLink.__table__
STALE_CLAIM = timedelta(seconds=60)
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Recipient:
    volunteer_id: int | None = None
    user_id: int | None = None

    @property
    def key(self) -> str:
        return f"v{self.volunteer_id}" if self.volunteer_id else f"u{self.user_id}"


@dataclass(frozen=True)
class Claimed:
    id: int
    chat_id: int | None
    payload: dict[str, Any]
    attempts: int
    message_id: int | None
    volunteer_id: int | None = None
    bulk: bool = True
    team: str | None = None


def active_links(session: Session, recipients: Iterable[Recipient],
                 channel: str = CHANNEL_TELEGRAM) -> dict[str, tuple[int, bool]]:
    """recipient key → (chat_id, reachable) for everyone with a linked chat."""
    recipients = list(recipients)
    vids = [r.volunteer_id for r in recipients if r.volunteer_id]
    uids = [r.user_id for r in recipients if r.user_id]
    out: dict[str, tuple[int, bool]] = {}
    base = select(L.c.volunteer_id, L.c.user_id, L.c.chat_id, L.c.unreachable_at).where(
        L.c.channel == channel, L.c.unlinked_at.is_(None))
    for chunk_start in range(0, max(len(vids), len(uids)), 900):
        conds = []
        if vids[chunk_start:chunk_start + 900]:
            conds.append(L.c.volunteer_id.in_(vids[chunk_start:chunk_start + 900]))
        if uids[chunk_start:chunk_start + 900]:
            conds.append(L.c.user_id.in_(uids[chunk_start:chunk_start + 900]))
        from sqlalchemy import or_
        for row in session.execute(base.where(or_(*conds))):
            key = f"v{row.volunteer_id}" if row.volunteer_id else f"u{row.user_id}"
            out[key] = (row.chat_id, row.unreachable_at is None)
    return out


@dataclass(frozen=True)
class Outgoing:
    dedupe_key: str
    recipient: Recipient
    payload: dict[str, Any]   # text, buttons; "sms": {template, params} when SMS may carry it
    message_id: int | None = None
    bulk: bool = True          # False for shift reminders: they still go past the monthly SMS cap
    team_group: bool = False   # the person's team's WeCom group gets this message: no SMS


def insert_rows(session: Session, table, rows: list[dict[str, Any]], batch: int = 1000) -> None:
    """Insert many rows as Core executemany statements in the session's transaction.

    A notice to a district is tens of thousands of rows: as ORM objects their flush took seconds of
    CPU inside the transaction (and, on SQLite, held the write lock all that time, stalling every
    scan), where these statements take a fraction of it (docs/performance.md)."""
    session.flush()
    for start in range(0, len(rows), batch):
        session.execute(insert(table), rows[start:start + batch])


def enqueue_many(session: Session, items: list[Outgoing], *, now: datetime | None = None,
                 channel: str | None = None) -> int:
    """Queue messages; a dedupe key already queued is skipped. Returns how many were new.

    Each row starts on the first channel of its route; `channel` restricts it to that one channel
    (when it works for the person).

    Does not commit: the caller's transaction (the action that causes the messages) does. Two
    concurrent callers with the same key collide on the unique index and one transaction fails,
    which is the point: the loser retries and finds the row there.
    """
    keys = [i.dedupe_key for i in items]
    existing: set[str] = set()
    for start in range(0, len(keys), 900):
        existing |= set(session.scalars(select(O.c.dedupe_key).where(O.c.dedupe_key.in_(keys[start:start + 900]))))
    fresh = [i for i in items if i.dedupe_key not in existing]
    seen: set[str] = set()
    fresh = [i for i in fresh if not (i.dedupe_key in seen or seen.add(i.dedupe_key))]
    from services.channels.routing import plan_routes

    links = active_links(session, [i.recipient for i in fresh])
    plans = plan_routes(session, fresh, links)
    when = now or system_clock()
    rows = []
    for item in fresh:
        plan = plans[item.dedupe_key]
        route = ([channel] if channel in plan.route else []) if channel else plan.route
        final = plan.exhausted_status
        if not route and plan.route and final == OUT_UNREACHABLE:
            final = OUT_NOT_LINKED  # restricted to a channel this person does not have
        rows.append({"dedupe_key": item.dedupe_key, "channel": route[0] if route else CHANNEL_WEB,
                     "route": ",".join(route[1:]) or None, "message_id": item.message_id,
                     "volunteer_id": item.recipient.volunteer_id, "user_id": item.recipient.user_id,
                     "chat_id": plan.chat_id, "status": OUT_PENDING if route else final,
                     "exhausted_status": plan.exhausted_status, "bulk": item.bulk,
                     "payload": json.dumps(item.payload, ensure_ascii=False), "next_attempt_at": when,
                     "created_at": when})
    insert_rows(session, O, rows)
    return len(fresh)


def enqueue_team_post(session: Session, *, dedupe_key: str, team: str, payload: dict[str, Any],
                      message_id: int | None, now: datetime, channel: str) -> bool:
    """One post to a team's group (WeCom robot): a row with no person, on that channel only."""
    if session.scalar(select(O.c.id).where(O.c.dedupe_key == dedupe_key)) is not None:
        return False
    session.add(OutboxItem(dedupe_key=dedupe_key, channel=channel, message_id=message_id, team=team,
                           status=OUT_PENDING, exhausted_status=OUT_FAILED, bulk=True,
                           payload=json.dumps(payload, ensure_ascii=False), next_attempt_at=now, created_at=now))
    session.flush()
    return True


_RECLAIM = (update(OutboxItem).where(OutboxItem.status == OUT_SENDING, OutboxItem.claimed_at < bindparam("stale"))
            .values(status=OUT_PENDING, claimed_by=None))


def claim_due(session: Session, *, worker: str, limit: int = 50, clock: Clock = system_clock,
              stale_after: timedelta = STALE_CLAIM, channel: str = CHANNEL_TELEGRAM) -> list[Claimed]:
    """Claim up to `limit` due rows of one channel for this sender (status `sending`)."""
    now = clock()
    with write_transaction(session) as conn:
        conn.execute(_RECLAIM, {"stale": now - stale_after})
        due = (select(O.c.id).where(O.c.status == OUT_PENDING, O.c.channel == channel, O.c.next_attempt_at <= now)
               .order_by(O.c.id).limit(limit))
        if conn.dialect.name == "postgresql":
            # A materialised CTE, not `id IN (subquery)`: PostgreSQL may run an IN subquery once
            # per outer row (a semi-join), and with SKIP LOCKED each run can pick other rows, so
            # the LIMIT did not hold. On a fresh outbox (no statistics yet) one claim of 50 took
            # a whole 5,000-message notice: the rows sat in `sending` while the standby sender
            # could not help, and the sender held them all in memory (+13 MB).
            batch = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
            claim = update(O).where(O.c.id == batch.c.id)
        else:   # SQLite runs the IN subquery once, inside the writer's BEGIN IMMEDIATE
            claim = update(O).where(O.c.id.in_(due.scalar_subquery()))
        rows = conn.execute(claim.values(status=OUT_SENDING, claimed_at=now, claimed_by=worker)
                            .returning(O.c.id, O.c.chat_id, O.c.payload, O.c.attempts, O.c.message_id,
                                       O.c.volunteer_id, O.c.bulk, O.c.team)).all()
    return sorted((Claimed(r.id, r.chat_id, json.loads(r.payload), r.attempts, r.message_id, r.volunteer_id,
                           bool(r.bulk), r.team) for r in rows), key=lambda c: c.id)


def record_attempt(session: Session, item_id: int, outcome: str, *, error: str | None = None,
                   external_id: str | None = None, provider: str | None = None, segments: int | None = None,
                   cost=None, clock: Clock = system_clock) -> None:
    """One row per try, with the channel the item was on (not committed: the caller's update is)."""
    row = session.execute(select(O.c.channel, O.c.volunteer_id, O.c.team).where(O.c.id == item_id)).first()
    if row is None:
        return
    session.add(DeliveryAttempt(outbox_id=item_id, channel=row.channel, outcome=outcome,
                                error=(error or "")[:500] or None, external_id=external_id, provider=provider,
                                volunteer_id=row.volunteer_id, team=row.team, segments=segments, cost=cost,
                                attempted_at=clock()))


def mark_sent(session: Session, item_id: int, *, external_id: str | None, clock: Clock = system_clock,
              provider: str | None = None, segments: int | None = None, cost=None) -> None:
    record_attempt(session, item_id, ATTEMPT_SENT, external_id=external_id, provider=provider, segments=segments,
                   cost=cost, clock=clock)
    session.execute(update(O).where(O.c.id == item_id).values(status=OUT_SENT, sent_at=clock(), external_id=external_id,
                                                              attempts=O.c.attempts + 1, last_error=None))
    session.commit()


def mark_retry(session: Session, item_id: int, *, error: str, at: datetime, count_attempt: bool = True,
               clock: Clock = system_clock) -> None:
    """Back to pending, due at `at`; after MAX_ATTEMPTS failed attempts the row moves on (`advance`)."""
    attempts = session.execute(select(O.c.attempts).where(O.c.id == item_id)).scalar() or 0
    attempts += 1 if count_attempt else 0
    if attempts >= MAX_ATTEMPTS:
        advance(session, item_id, error=error, clock=clock)
        return
    if count_attempt:
        record_attempt(session, item_id, ATTEMPT_RETRY, error=error, clock=clock)
    session.execute(update(O).where(O.c.id == item_id).values(status=OUT_PENDING, attempts=attempts, next_attempt_at=at,
                                                              last_error=error[:500], claimed_by=None))
    session.commit()


def advance(session: Session, item_id: int, *, error: str, outcome: str = ATTEMPT_GAVE_UP,
            clock: Clock = system_clock, commit: bool = True) -> str:
    """This channel failed for good: move the item to the next one on its route, or end it.

    Returns the item's new channel, or its final status when no channel is left (the web inbox
    still has the message).
    """
    row = session.execute(select(O.c.channel, O.c.route, O.c.exhausted_status).where(O.c.id == item_id)).first()
    if row is None:
        return OUT_FAILED
    record_attempt(session, item_id, outcome, error=error, clock=clock)
    route = [c for c in (row.route or "").split(",") if c]
    if route:
        session.execute(update(O).where(O.c.id == item_id).values(
            channel=route[0], route=",".join(route[1:]) or None, status=OUT_PENDING, attempts=0,
            next_attempt_at=clock(), last_error=error[:500], claimed_by=None))
        result = route[0]
    else:
        result = row.exhausted_status or OUT_UNREACHABLE
        session.execute(update(O).where(O.c.id == item_id).values(status=result, last_error=error[:500],
                                                                  claimed_by=None))
    if commit:
        session.commit()
    return result


def release(session: Session, item_ids: list[int], *, at: datetime) -> None:
    """Give claimed rows back unsent (e.g. a chat's 1-s spacing, or a 429 pause)."""
    if item_ids:
        session.execute(update(O).where(O.c.id.in_(item_ids), O.c.status == OUT_SENDING)
                        .values(status=OUT_PENDING, next_attempt_at=at, claimed_by=None))
        session.commit()


def mark_failed(session: Session, item_id: int, *, error: str, clock: Clock = system_clock) -> None:
    """A permanent refusal of this message on this channel: try the next channel."""
    advance(session, item_id, error=error, clock=clock)


def mark_unreachable(session: Session, item_id: int, chat_id: int, *, error: str, clock: Clock = system_clock) -> None:
    """The person blocked the bot: stop sending to that chat (pending rows too) until they relink;
    their messages move to the next channel."""
    now = clock()
    session.execute(update(L).where(L.c.chat_id == chat_id, L.c.unlinked_at.is_(None)).values(unreachable_at=now))
    waiting = list(session.scalars(select(O.c.id).where(and_(
        O.c.chat_id == chat_id, O.c.channel == CHANNEL_TELEGRAM, O.c.id != item_id,
        O.c.status.in_((OUT_PENDING, OUT_SENDING))))))
    for other in [item_id, *waiting]:
        advance(session, other, error=error, clock=clock, commit=False)
    session.commit()
