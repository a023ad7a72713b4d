"""The year's indicators as last computed, shared by every process.

A district's year takes seconds to compute (50,000 volunteers, half a million records). Each web
worker used to compute it once for itself, so the first indicator page after every restart, on
every worker, made the office wait. The scheduler now keeps this table fresh, and any process that
computes the year writes its result here for the others (services/indicator_snapshots.py).
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime


class IndicatorSnapshot(db.Model):
    __tablename__ = "indicator_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    asked_on: Mapped[date] = mapped_column(Date)   # the local day it was computed for (a past year's report is as of its last day)
    evidence_limit: Mapped[int] = mapped_column(Integer)
    # When the computation began: a change committed after this instant is not in it.
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seconds: Mapped[float] = mapped_column(Float)            # how long it took: decides whether a page waits for the next one
    payload: Mapped[str] = mapped_column(Text)                # the report, services/indicator_snapshots.py encodes it

    __table_args__ = (UniqueConstraint("year", "asked_on", "evidence_limit", name="uq_indicator_snapshots_key"),)


class IndicatorMarks(db.Model):
    """One row (id 1): when the office last changed something through the web, and when a
    volunteer's personal data was last erased. Every process reads it beside the stored report: a
    report started before the last change is shown as "updating" by every web worker, not only by
    the one that took the change; one started before an erasure is never shown or stored again
    (it may name the person)."""

    __tablename__ = "indicator_marks"

    id: Mapped[int] = mapped_column(primary_key=True)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    forgotten_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
