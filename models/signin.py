"""Passwordless sign-in for volunteers' phones: one-time links and signed-in devices."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.types import UTCDateTime, utcnow
from models.volunteer import Volunteer

METHOD_LINK = "link"              # a coordinator's one-time sign-in link
METHOD_CARD = "card"              # the printed volunteer card (long-lived personal code)
METHOD_SELF_SERVICE = "self_service"  # phone number + vest number (before PINs; no longer issued)
METHOD_PIN = "pin"                # phone number + personal PIN, when an admin allows it
METHOD_SMS_CODE = "sms_code"      # phone number + a one-time code sent by SMS (when a channel exists)
# Self-service: signed in with something typed on a page rather than a personal link or card from
# the office. Such a phone may not link a Telegram chat.
SHARED_SECRET_METHODS = (METHOD_SELF_SERVICE, METHOD_PIN, METHOD_SMS_CODE)


class LoginLink(db.Model):
    """A personal one-time sign-in link. Only a hash of its token is stored."""

    __tablename__ = "login_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Cancelled before use: a newer link replaced it, or one of the volunteer's phones was revoked.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(128))  # "user:3", "cli:root", "bot"

    volunteer: Mapped[Volunteer] = relationship()


class Device(db.Model):
    """A phone (browser) signed in as a volunteer; valid until revoked, not until a date."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    user_agent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))

    volunteer: Mapped[Volunteer] = relationship()


class SigninFailure(db.Model):
    """A phone + PIN attempt that has not succeeded, counted per phone number and per address.

    Kept in the database (not in a worker's memory) so the limits hold across workers and restarts.
    An attempt is written before its PIN is checked; a phone number's rows are deleted when the
    volunteer signs in, a coordinator lifts its lock-out, or issues a new PIN.
    """

    __tablename__ = "signin_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    address: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SigninCode(db.Model):
    """A one-time sign-in code sent by SMS (hash only); used up by the sign-in, short-lived."""

    __tablename__ = "signin_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SmsCodeRequest(db.Model):
    """A request for an SMS sign-in code, for any number typed (a hash of it), kept for two hours.

    Every request writes one, whether or not the number is on the roster: the hourly limit per
    number reads it, and the page then costs the same work (and time) for a stranger's number as
    for a volunteer's, so its timing does not say who is on the roster.
    """

    __tablename__ = "sms_code_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AppSetting(db.Model):
    """Settings an admin changes at run time (the environment holds the deployment's)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))
