"""Credited hours: how patrol time becomes minutes, and the totals people see.

Time is kept in three buckets that are never mixed up, because the year-end self-evaluation must
defend each hour: scan-verified (QR check-in and check-out), imported (paper sheets of patrols
before the service existed) and adjusted (a coordinator's hand corrections and check-ins on a
volunteer's behalf, each with who, when and why).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, select

from models.attendance import (REVIEW_REJECTED, SOURCE_IMPORT, SOURCE_PROXY, SOURCE_SCAN, Attendance,
                               AttendanceCredit, HourAdjustment)
from services.clock import SHANGHAI
from services.programme_year import YearStart, current_year, year_dates

TARGET_HOURS = 6.0
A = Attendance.__table__
C = AttendanceCredit.__table__
H = HourAdjustment.__table__


def hours(minutes: int) -> float:
    """Hours shown with one decimal (whole minutes are what is stored), rounded down: `floor_hours`."""
    return floor_hours(minutes)


def split_by_day(start: datetime, end: datetime, zone: ZoneInfo = SHANGHAI) -> list[tuple[date, int]]:
    """Whole minutes of [start, end) on each local calendar day.

    The presence is rounded once, not per day: each day gets the whole minutes of the running total
    at its end minus those at its start, so no minute is lost at midnight and the parts add up to
    the whole (23:00:30–01:00:45 is 59 + 61 = 120).
    """
    out: list[tuple[date, int]] = []
    cursor = start
    while cursor < end:
        local_day = cursor.astimezone(zone).date()
        next_midnight = datetime.combine(local_day + timedelta(days=1), time(), tzinfo=zone)
        seg_end = min(end, next_midnight)
        minutes = int((seg_end - start).total_seconds() // 60) - int((cursor - start).total_seconds() // 60)
        if minutes > 0:
            out.append((local_day, minutes))
        cursor = seg_end
    return out


def credited_window(check_in: datetime, check_out: datetime, shift_start: datetime | None,
                    shift_end: datetime | None) -> tuple[datetime, datetime] | None:
    """The overlap of the presence with the shift: the ±30 min scan window earns nothing."""
    start = max(check_in, shift_start) if shift_start else check_in
    end = min(check_out, shift_end) if shift_end else check_out
    return (start, end) if end > start else None


_YEAR_TOTAL = select(
    select(func.coalesce(func.sum(C.c.minutes), 0)).select_from(C.join(A, A.c.id == C.c.attendance_id))
    .where(C.c.volunteer_id == bindparam("vid"), C.c.work_date.between(bindparam("start"), bindparam("end")),
           A.c.review_status != REVIEW_REJECTED).scalar_subquery()
    + select(func.coalesce(func.sum(H.c.minutes), 0))
    .where(H.c.volunteer_id == bindparam("vid"), H.c.work_date.between(bindparam("start"), bindparam("end")))
    .scalar_subquery())


@dataclass(frozen=True)
class HoursSummary:
    verified_minutes: int
    imported_minutes: int
    adjusted_minutes: int
    target_hours: float = TARGET_HOURS
    year: int | None = None

    @property
    def total_minutes(self) -> int:
        return self.verified_minutes + self.imported_minutes + self.adjusted_minutes

    @property
    def total(self) -> float:
        return hours(self.total_minutes)

    @property
    def verified(self) -> float:
        return hours(self.verified_minutes)

    @property
    def imported(self) -> float:
        return hours(self.imported_minutes)

    @property
    def adjusted(self) -> float:
        return hours(self.adjusted_minutes)

    @property
    def met(self) -> bool:
        return self.total_minutes >= self.target_hours * 60


def year_total_minutes(conn: Any, volunteer_id: int, year: int, *, start_day: YearStart | None = None) -> int:
    """All credited minutes of a volunteer in a programme year, in one statement (the scan's answer).
    A caller that already read the year's start passes it (`start_day`): one query fewer per scan."""
    start, end = start_day.dates(year) if start_day is not None else year_dates(conn, year)
    return int(conn.execute(_YEAR_TOTAL, {"vid": volunteer_id, "start": start, "end": end}).scalar() or 0)


def hours_by_volunteer(conn: Any, year: int, *, target_hours: float | None = None) -> dict[int, HoursSummary]:
    """`volunteer_hours` for everyone at once, in two grouped statements: the hours export of a
    district (50,000 volunteers) made two queries per volunteer and ran past the 30 s timeout.
    Volunteers without any credited time are absent (their summary is all zeros)."""
    start, end = year_dates(conn, year)
    if target_hours is None:
        target_hours = year_target_hours(conn, year)
    minutes: dict[int, dict[str, int]] = {}
    for vid, source, total in conn.execute(
            select(C.c.volunteer_id, A.c.source, func.coalesce(func.sum(C.c.minutes), 0))
            .select_from(C.join(A, A.c.id == C.c.attendance_id))
            .where(C.c.work_date.between(start, end), A.c.review_status != REVIEW_REJECTED)
            .group_by(C.c.volunteer_id, A.c.source)):
        minutes.setdefault(vid, {})[source] = int(total or 0)
    for vid, total in conn.execute(select(H.c.volunteer_id, func.coalesce(func.sum(H.c.minutes), 0))
                                   .where(H.c.work_date.between(start, end)).group_by(H.c.volunteer_id)):
        minutes.setdefault(vid, {})["adjustment"] = int(total or 0)
    return {vid: HoursSummary(m.get(SOURCE_SCAN, 0), m.get(SOURCE_IMPORT, 0),
                              m.get(SOURCE_PROXY, 0) + m.get("adjustment", 0), target_hours, year)
            for vid, m in minutes.items()}


def volunteer_hours(conn: Any, volunteer_id: int, year: int, *, target_hours: float | None = None) -> HoursSummary:
    """Credited time of one volunteer in a programme year (a Session or a Connection), measured
    against that year's target (its settings row, else the default 6 h)."""
    start, end = year_dates(conn, year)
    if target_hours is None:
        target_hours = year_target_hours(conn, year)
    by_source = dict(conn.execute(
        select(A.c.source, func.coalesce(func.sum(C.c.minutes), 0))
        .select_from(C.join(A, A.c.id == C.c.attendance_id))
        .where(C.c.volunteer_id == volunteer_id, C.c.work_date.between(start, end),
               A.c.review_status != REVIEW_REJECTED)
        .group_by(A.c.source)).all())
    adjustments = conn.execute(select(func.coalesce(func.sum(H.c.minutes), 0))
                               .where(and_(H.c.volunteer_id == volunteer_id, H.c.work_date.between(start, end)))
                               ).scalar() or 0
    return HoursSummary(int(by_source.get(SOURCE_SCAN) or 0), int(by_source.get(SOURCE_IMPORT) or 0),
                        int(by_source.get(SOURCE_PROXY) or 0) + int(adjustments), target_hours, year)


def year_target_hours(conn: Any, year: int) -> float:
    """The year's hours target without creating its settings row (read-only callers: scan, bot, API)."""
    from models.programme import ProgrammeYear

    value = conn.execute(select(ProgrammeYear.__table__.c.target_hours)
                         .where(ProgrammeYear.__table__.c.year == year)).scalar()
    return float(value) if value is not None else TARGET_HOURS


def current_hours(conn: Any, volunteer_id: int, now: datetime, zone: ZoneInfo = SHANGHAI) -> HoursSummary:
    """A volunteer's hours in the programme year `now` falls in (what /me, /hours and the API show)."""
    return volunteer_hours(conn, volunteer_id, current_year(conn, now, zone))


@dataclass(frozen=True)
class AttendanceLine:
    id: int
    point_name: str | None
    event_name: str | None
    check_in_at: datetime
    check_out_at: datetime | None
    status: str
    source: str
    review_status: str
    credited_minutes: int

    @property
    def credited_hours(self) -> float:
        return hours(self.credited_minutes)


def recent_attendances(conn: Any, volunteer_id: int, limit: int = 10) -> list[AttendanceLine]:
    from models.event import Event
    from models.point import PatrolPoint

    P, E = PatrolPoint.__table__, Event.__table__
    rows = conn.execute(select(A.c.id, P.c.name.label("pname"), E.c.name.label("ename"), A.c.check_in_at,
                               A.c.check_out_at, A.c.status, A.c.source, A.c.review_status, A.c.credited_minutes)
                        .select_from(A.outerjoin(P, P.c.id == A.c.point_id).outerjoin(E, E.c.id == A.c.event_id))
                        .where(A.c.volunteer_id == volunteer_id).order_by(A.c.check_in_at.desc()).limit(limit)).all()
    return [AttendanceLine(r.id, r.pname, r.ename, r.check_in_at, r.check_out_at, r.status, r.source,
                           r.review_status, r.credited_minutes) for r in rows]


def floor_hours(minutes: int) -> float:
    """Hours shown to people round down to one decimal, so a shown 6.0 always means the target is met."""
    return (minutes // 6) / 10


def hours_text(value: float | None) -> str:
    """A number of hours (a target, a total) as people read it: at most one decimal, rounded down,
    no trailing ".0" — a target of 6.5 h reads "6.5", never "6" or "7" (`%.0f` rounds half to even),
    and nothing reads as more than it is."""
    tenths = math.floor(round(float(value or 0) * 10, 6))
    return f"{tenths / 10:g}"
