"""Attendances (time on patrol), every scan attempt, and hand-made hour adjustments.

Scan-verified, imported and adjusted time are kept apart on purpose: the year-end evaluation must
show which hours a QR scan proves and which a person typed in.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (Boolean, Date, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.event import Event, Shift
from models.point import PatrolPoint
from models.types import UTCDateTime, utcnow
from models.volunteer import Volunteer

SOURCE_SCAN = "scan"        # checked in and out by scanning a poster
SOURCE_PROXY = "proxy"      # a coordinator checked the volunteer in/out on their behalf
SOURCE_IMPORT = "import"    # typed in from a paper sheet of a past patrol

ATT_OPEN = "open"
ATT_CLOSED = "closed"
ATT_AUTO_CLOSED = "auto_closed"

REVIEW_NONE = "none"
REVIEW_FLAGGED = "flagged"
REVIEW_APPROVED = "approved"
REVIEW_REJECTED = "rejected"


class Attendance(db.Model):
    __tablename__ = "attendances"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id"), index=True)
    point_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_points.id"))
    checkout_point_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_points.id"))
    source: Mapped[str] = mapped_column(String(16), default=SOURCE_SCAN)
    status: Mapped[str] = mapped_column(String(16), default=ATT_OPEN)
    check_in_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    check_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    credited_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # The Shanghai calendar day the credit belongs to (daily cap, year attribution).
    work_date: Mapped[date] = mapped_column(Date, index=True)
    review_status: Mapped[str] = mapped_column(String(16), default=REVIEW_NONE)
    flags: Mapped[str] = mapped_column(String(255), default="")
    walk_in: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    volunteer: Mapped[Volunteer] = relationship()
    event: Mapped[Event | None] = relationship()
    shift: Mapped[Shift | None] = relationship()
    point: Mapped[PatrolPoint | None] = relationship(foreign_keys=[point_id])

    __table_args__ = (
        # At most one open attendance per volunteer, whatever the number of tabs or workers.
        Index("uq_attendances_one_open", "volunteer_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_attendances_review_status", "review_status"),
        Index("ix_attendances_shift_walk_in", "shift_id", "walk_in"),
    )

    @property
    def flag_list(self) -> list[str]:
        return [f for f in self.flags.split(",") if f]


class AttendanceCredit(db.Model):
    """Credited minutes of an attendance on one Shanghai calendar day.

    A night patrol 22:00–02:00 credits two days: the 12-hour daily cap and the programme year
    (New Year's Eve patrols!) are both decided per calendar day.
    """

    __tablename__ = "attendance_credits"

    id: Mapped[int] = mapped_column(primary_key=True)
    attendance_id: Mapped[int] = mapped_column(ForeignKey("attendances.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"))
    work_date: Mapped[date] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("attendance_id", "work_date"),
        Index("ix_attendance_credits_volunteer_day", "volunteer_id", "work_date"),
    )


class ScanRecord(db.Model):
    """Every scan attempt, accepted or refused, with its reason code (the audit trail)."""

    __tablename__ = "scan_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id"))
    point_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_points.id"))
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id"))
    attendance_id: Mapped[int | None] = mapped_column(ForeignKey("attendances.id"))
    # When the scan counts: the server's time, or the phone's time for a scan the phone kept
    # offline and sent late (within OFFLINE_SCAN_MAX_DELAY; see services/checkin.py).
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The server's time when the request arrived, and the phone's time it says it scanned at (sent
    # only by the offline queue): both kept so a coordinator can see how late a scan came.
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    nonce: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))   # check_in | check_out | duplicate | refused
    code: Mapped[str] = mapped_column(String(32))     # "ok" or a refusal code
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)
    device_id: Mapped[int | None] = mapped_column(Integer)
    # SHA-256 of the browser's long-lived `pv_browser` cookie: a device row belongs to one sign-in,
    # the browser outlives sign-ins, so this is what shows one phone used by two volunteers.
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    # The first answer, replayed verbatim when the same nonce comes again.
    response_json: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("volunteer_id", "nonce"),
        Index("ix_scan_records_volunteer_time", "volunteer_id", "scanned_at"),
        Index("ix_scan_records_device_time", "device_id", "scanned_at"),
        Index("ix_scan_records_code", "code"),
        Index("ix_scan_records_attendance", "attendance_id"),  # a record's own scans (review evidence)
        Index("ix_scan_records_browser_time", "browser_hash", "scanned_at"),
    )


class HourAdjustment(db.Model):
    """Minutes a coordinator added or removed by hand, with who, when and why."""

    __tablename__ = "hour_adjustments"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    attendance_id: Mapped[int | None] = mapped_column(ForeignKey("attendances.id"))
    work_date: Mapped[date] = mapped_column(Date, index=True)
    minutes: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
