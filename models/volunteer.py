"""Volunteers on the roster."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime, utcnow

STATUS_ACTIVE = "active"
STATUS_WITHDRAWN = "withdrawn"


class Volunteer(db.Model):
    __tablename__ = "volunteers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Normalised 11-digit mainland mobile number: the volunteer's identity on the roster.
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    vest_no: Mapped[str | None] = mapped_column(String(32), index=True)
    # ID-card number (PIPL sensitive data): Fernet ciphertext, a keyed hash for exact look-ups
    # (the insurer's list is matched by ID number) and the masked form for display.
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    # A non-admin imported a number already registered to someone else: it is stored without its
    # hash (no match, no uniqueness clash) and waits for an admin, so the importer learns nothing.
    id_number_check: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The printed card's QR is derived from this; bumping it revokes every card printed before.
    card_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The personal 6-digit sign-in PIN a coordinator issues (salted hash only; shown once, printed on
    # the card). Without one, phone-number sign-in is impossible for this volunteer.
    signin_pin_hash: Mapped[str | None] = mapped_column(String(256))
    signin_pin_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_ACTIVE)
    joined_on: Mapped[date] = mapped_column(Date)
    withdrawn_on: Mapped[date | None] = mapped_column(Date)
    # Set when the volunteer's personal data was erased on request (services/privacy.py); the row
    # stays, with its dates, so the programme's figures for past years do not change.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_volunteers_status", "status"),)

    def active_during(self, start: date, end: date) -> bool:
        """Whether the volunteer was on the roster at some point of [start, end]."""
        if self.joined_on > end:
            return False
        return self.withdrawn_on is None or self.withdrawn_on >= start

    def __repr__(self) -> str:
        return f"<Volunteer {self.id} {self.name}>"
