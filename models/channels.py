"""Delivery channels beside Telegram: every delivery attempt, each person's channel choice, and
each team's WeCom group robot."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime, utcnow

CHANNEL_SMS = "sms"
CHANNEL_WECOM = "wecom"
CHANNEL_WEB = "web"

# Outcomes of one attempt.
ATTEMPT_SENT = "sent"
ATTEMPT_RETRY = "retry"
ATTEMPT_GAVE_UP = "gave_up"      # permanent failure on this channel (the item moves to the next)
ATTEMPT_SKIPPED = "skipped"      # not tried: opted out, over a limit or the monthly cap


class DeliveryAttempt(db.Model):
    """One try to deliver one outbox item on one channel: the notice page's "how it reached them"."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(16))
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))
    team: Mapped[str | None] = mapped_column(String(64))
    segments: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_delivery_attempts_channel_at", "channel", "attempted_at"),
                      Index("ix_delivery_attempts_volunteer_at", "volunteer_id", "attempted_at"))


class ContactPreference(db.Model):
    """A volunteer's choice on /me: the order of channels, and "no SMS for me"."""

    __tablename__ = "contact_preferences"

    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    channel_order: Mapped[str | None] = mapped_column(String(64))  # "telegram,sms"; None: the office default
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TeamRobot(db.Model):
    """A team's (居委's) WeCom group robot. The webhook URL is a secret: stored encrypted, shown masked."""

    __tablename__ = "team_robots"

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_enc: Mapped[bytes] = mapped_column(LargeBinary)
    webhook_masked: Mapped[str] = mapped_column(String(128))
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
