"""Coordinator accounts (staff of the safety office)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime, utcnow

ROLE_ADMIN = "admin"
ROLE_COORDINATOR = "coordinator"
# A team leader the admin designates: may only use the on-patrol board to check people in and out
# on their behalf (volunteers without a working phone on the night).
ROLE_LEADER = "leader"
ROLES = (ROLE_ADMIN, ROLE_COORDINATOR, ROLE_LEADER)
STAFF_ROLES = (ROLE_ADMIN, ROLE_COORDINATOR)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=ROLE_COORDINATOR)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # For a team leader: the team (居委) they lead, so they hear about its volunteers' leave.
    team: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def is_staff(self) -> bool:
        """Admins and coordinators: the whole coordinator web (leaders get the board only)."""
        return self.role in STAFF_ROLES


class CoordSession(db.Model):
    """A signed-in coordinator browser. The cookie holds a random secret, the row its hash, so
    logging out (or an admin) ends the session on the server and a copied cookie is refused after."""

    __tablename__ = "coord_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(128))
