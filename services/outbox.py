"""The transactional outbox: every outgoing message is a row written with the action that causes
it, and a sender drains the rows.

Why: a notice that silently fails to arrive is a safety problem, and a reminder sent twice makes
volunteers mute the bot. A row per (message, person, channel) with a unique dedupe key makes
queueing idempotent; claiming rows in a transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL)
makes sending at-most-once per claim. A sender that dies mid-send leaves rows `sending`; after
`STALE_CLAIM` they are claimed again, so a message that was in flight at the crash may arrive
twice, and nothing is lost.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from models.messaging import (CHANNEL_TELEGRAM, OUT_FAILED, OUT_NOT_LINKED, OUT_PENDING, OUT_SENDING, OUT_SENT,
                              OUT_UNREACHABLE, ChatLink, OutboxItem)
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
    chat_id: int
    payload: dict[str, Any]
    attempts: int
    message_id: int | None


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
    payload: dict[str, Any]
    message_id: int | None = None


def enqueue_many(session: Session, items: list[Outgoing], *, now: datetime | None = None,
                 channel: str = CHANNEL_TELEGRAM) -> int:
    """Queue messages; a dedupe key already queued is skipped. Returns how many were new.

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
    links = active_links(session, [i.recipient for i in fresh], channel)
    when = now or system_clock()
    for item in fresh:
        link = links.get(item.recipient.key)
        status = OUT_PENDING if link and link[1] else OUT_UNREACHABLE if link else OUT_NOT_LINKED
        session.add(OutboxItem(dedupe_key=item.dedupe_key, channel=channel, message_id=item.message_id,
                               volunteer_id=item.recipient.volunteer_id, user_id=item.recipient.user_id,
                               chat_id=link[0] if link else None, status=status,
                               payload=json.dumps(item.payload, ensure_ascii=False), next_attempt_at=when,
                               created_at=when))
    session.flush()
    return len(fresh)


_RECLAIM = (update(OutboxItem).where(OutboxItem.status == OUT_SENDING, OutboxItem.claimed_at < bindparam("stale"))
            .values(status=OUT_PENDING, claimed_by=None))


def claim_due(session: Session, *, worker: str, limit: int = 50, clock: Clock = system_clock,
              stale_after: timedelta = STALE_CLAIM) -> list[Claimed]:
    """Claim up to `limit` due rows for this sender (status `sending`)."""
    now = clock()
    with write_transaction(session) as conn:
        conn.execute(_RECLAIM, {"stale": now - stale_after})
        due = (select(O.c.id).where(O.c.status == OUT_PENDING, O.c.next_attempt_at <= now)
               .order_by(O.c.id).limit(limit))
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = conn.execute(update(O).where(O.c.id.in_(due.scalar_subquery()))
                            .values(status=OUT_SENDING, claimed_at=now, claimed_by=worker)
                            .returning(O.c.id, O.c.chat_id, O.c.payload, O.c.attempts, O.c.message_id)).all()
    return sorted((Claimed(r.id, r.chat_id, json.loads(r.payload), r.attempts, r.message_id) for r in rows),
                  key=lambda c: c.id)


def mark_sent(session: Session, item_id: int, *, external_id: str | None, clock: Clock = system_clock) -> None:
    session.execute(update(O).where(O.c.id == item_id).values(status=OUT_SENT, sent_at=clock(), external_id=external_id,
                                                              attempts=O.c.attempts + 1, last_error=None))
    session.commit()


def mark_retry(session: Session, item_id: int, *, error: str, at: datetime, count_attempt: bool = True) -> None:
    """Back to pending, due at `at`; after MAX_ATTEMPTS failed attempts the row is failed."""
    attempts = session.execute(select(O.c.attempts).where(O.c.id == item_id)).scalar() or 0
    attempts += 1 if count_attempt else 0
    status = OUT_FAILED if attempts >= MAX_ATTEMPTS else OUT_PENDING
    session.execute(update(O).where(O.c.id == item_id).values(status=status, attempts=attempts, next_attempt_at=at,
                                                              last_error=error[:500], claimed_by=None))
    session.commit()


def release(session: Session, item_ids: list[int], *, at: datetime) -> None:
    """Give claimed rows back unsent (e.g. a chat's 1-s spacing, or a 429 pause)."""
    if item_ids:
        session.execute(update(O).where(O.c.id.in_(item_ids), O.c.status == OUT_SENDING)
                        .values(status=OUT_PENDING, next_attempt_at=at, claimed_by=None))
        session.commit()


def mark_failed(session: Session, item_id: int, *, error: str) -> None:
    session.execute(update(O).where(O.c.id == item_id).values(status=OUT_FAILED, last_error=error[:500],
                                                              attempts=O.c.attempts + 1))
    session.commit()


def mark_unreachable(session: Session, item_id: int, chat_id: int, *, error: str, clock: Clock = system_clock) -> None:
    """The person blocked the bot: stop sending to that chat (pending rows too) until they relink."""
    now = clock()
    session.execute(update(L).where(L.c.chat_id == chat_id, L.c.unlinked_at.is_(None)).values(unreachable_at=now))
    session.execute(update(O).where(and_(O.c.chat_id == chat_id, O.c.status.in_((OUT_PENDING, OUT_SENDING))))
                    .values(status=OUT_UNREACHABLE, last_error=error[:500]))
    session.execute(update(O).where(O.c.id == item_id).values(status=OUT_UNREACHABLE, last_error=error[:500]))
    session.commit()
