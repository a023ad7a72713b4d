"""Messages to people, and their delivery: chat links, the transactional outbox, the web inbox,
and the satisfaction survey."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime, utcnow

CHANNEL_TELEGRAM = "telegram"

OUT_PENDING = "pending"
OUT_SENDING = "sending"
OUT_SENT = "sent"
OUT_FAILED = "failed"
OUT_NOT_LINKED = "not_linked"
OUT_UNREACHABLE = "unreachable"
OUT_TEAM_GROUP = "team_group"  # posted to the team's WeCom group: 团队群（未确认）


class ChatLink(db.Model):
    """A messenger chat linked to a volunteer or a coordinator."""

    __tablename__ = "chat_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), default=CHANNEL_TELEGRAM)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    username: Mapped[str | None] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    unlinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The person blocked the bot: nothing more is sent until they link again.
    unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The signed-in phone whose page issued the link: revoking that phone (or the card it signed in
    # with) unlinks the chat, so whoever holds a lost phone loses the bot too.
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), index=True)

    __table_args__ = (
        Index("uq_chat_links_active_chat", "channel", "chat_id", unique=True,
              sqlite_where=text("unlinked_at IS NULL"), postgresql_where=text("unlinked_at IS NULL")),
        Index("uq_chat_links_active_volunteer", "channel", "volunteer_id", unique=True,
              sqlite_where=text("unlinked_at IS NULL AND volunteer_id IS NOT NULL"),
              postgresql_where=text("unlinked_at IS NULL AND volunteer_id IS NOT NULL")),
        Index("uq_chat_links_active_user", "channel", "user_id", unique=True,
              sqlite_where=text("unlinked_at IS NULL AND user_id IS NOT NULL"),
              postgresql_where=text("unlinked_at IS NULL AND user_id IS NOT NULL")),
    )


class ChatLinkToken(db.Model):
    """A one-time token in a `t.me/<bot>?start=<token>` deep link (only its hash is stored)."""

    __tablename__ = "chat_link_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))


class Message(db.Model):
    """Something said to people: a notice, a reminder, a survey question, a digest.

    Channel-independent: each recipient sees it in the web inbox; each channel (Telegram today,
    WeCom tomorrow) gets its own outbox row.
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # notice | reminder | survey | digest | system
    title: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    audience: Mapped[str | None] = mapped_column(String(255))
    # Idempotency: a notice form's nonce, or a job's key (the same reminder is one message).
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    survey_round_id: Mapped[int | None] = mapped_column(ForeignKey("survey_rounds.id"))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class MessageRecipient(db.Model):
    """The web inbox: who a message is for, and when they read it on their page."""

    __tablename__ = "message_recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("message_id", "volunteer_id", "user_id"),)


class OutboxItem(db.Model):
    """One message to one person on one channel, written in the same transaction as its cause.

    The dedupe key makes "queue it" idempotent: a job run twice, a double-pressed button or a
    retried request finds the row already there.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default=CHANNEL_TELEGRAM)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)  # JSON: text, buttons
    status: Mapped[str] = mapped_column(String(16), default=OUT_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(64))  # Telegram's message_id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The channels still to try after `channel` fails for good ("sms"), comma-separated.
    route: Mapped[str | None] = mapped_column(String(64))
    # The status when every channel failed: unreachable, or team_group (the team's WeCom group has it).
    exhausted_status: Mapped[str | None] = mapped_column(String(16))
    # Bulk (notices, surveys, digests) stops at the monthly SMS cap; shift reminders do not.
    bulk: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    team: Mapped[str | None] = mapped_column(String(64))  # a WeCom group post's team

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class SurveyRound(db.Model):
    __tablename__ = "survey_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    question: Mapped[str] = mapped_column(Text)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SurveyAnswer(db.Model):
    """One answer per volunteer per round; answering again replaces it."""

    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("survey_rounds.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    awaiting_comment: Mapped[bool] = mapped_column(Boolean, default=False)
    # After a score on Telegram, the next message is a comment only until this time (a short
    # window): a later "明天的班我去不了了" is not silently filed as survey feedback.
    comment_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("round_id", "volunteer_id"),)


class SurveyComment(db.Model):
    """A comment on a survey answer; comments are appended, each with its time, never overwritten."""

    __tablename__ = "survey_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[int] = mapped_column(ForeignKey("survey_answers.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


DRAFT_OPEN = "open"
DRAFT_SENT = "sent"
DRAFT_CANCELLED = "cancelled"


class NoticeDraft(db.Model):
    """A coordinator's notice drafted in the bot, waiting for 发送 or 取消.

    Kept in the database, not in the bot's memory, so a draft survives a restart and has exactly
    one ending: once sent or cancelled it stays so, whatever button is pressed later.
    """

    __tablename__ = "notice_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DRAFT_OPEN)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
