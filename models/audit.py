"""Audit trails (PIPL): personal-data exports (who exported which ID numbers, and when) and the
coordinators' actions on people's data and hours."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime, utcnow


class PersonalDataExport(db.Model):
    __tablename__ = "personal_data_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    what: Mapped[str] = mapped_column(String(128))
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)


class CoordinatorAction(db.Model):
    """What a coordinator or admin did to people's data or hours (imports, reviews, adjustments,
    withdrawals, revocations, exports, erasures).

    Kept apart from the data it describes on purpose: no foreign keys (so nothing cascades into it
    and erasing a volunteer cannot delete the entries about the erasure), the target named as text
    ("volunteer:42", "attendance:7", "roster"), and never updated after it is written.
    """

    __tablename__ = "coordinator_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(128), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
