"""Credited minutes per volunteer and Shanghai calendar day: the one place that writes them.

Every change that can move a minute (a check-out, an auto-close, a withdrawal, a review decision,
a paper import) calls `recompute_days` for the days it touches, so what a day holds never depends
on the order in which things happened:

- a record's credit is the overlap of its presence with its shift (the whole presence when it has
  no shift), split at local midnight and rounded once, so the parts add up to the whole;
- on each day, records keep their minutes in check-in order until the daily cap is reached; later
  ones are cut and flagged `daily_cap`, and lose the flag again when an earlier record is rejected;
- a rejected record holds nothing, so it gives its minutes back to the records after it;
- hand adjustments (`hour_adjustments`) are deliberate entries and are not part of the cap.

The caller holds the volunteer's lock (`lock_volunteer`) or is the only writer (an import).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, insert, select, update

from models.attendance import REVIEW_FLAGGED, REVIEW_NONE, REVIEW_REJECTED, Attendance, AttendanceCredit
from models.event import Shift
from services.clock import SHANGHAI
from services.hours import credited_window, split_by_day

FLAG_DAILY_CAP = "daily_cap"

A = Attendance.__table__
C = AttendanceCredit.__table__
SH = Shift.__table__

_RECORDS = (select(A.c.id, A.c.check_in_at, A.c.check_out_at, A.c.review_status, A.c.flags, A.c.credited_minutes,
                   SH.c.starts_at, SH.c.ends_at)
            .select_from(A.outerjoin(SH, SH.c.id == A.c.shift_id))
            .where(A.c.volunteer_id == bindparam("vid"), A.c.check_out_at.is_not(None),
                   A.c.check_in_at < bindparam("until"), A.c.check_out_at > bindparam("since"))
            .order_by(A.c.check_in_at, A.c.id))
_UPDATE = (update(A).where(A.c.id == bindparam("b_id"))
           .values(credited_minutes=bindparam("b_minutes"), flags=bindparam("b_flags"),
                   review_status=bindparam("b_review")))


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def credit_parts(check_in: datetime, check_out: datetime | None, shift_start: datetime | None,
                 shift_end: datetime | None, zone: ZoneInfo = SHANGHAI) -> list[tuple[date, int]]:
    """A record's uncapped credit on each local day (empty while it is open)."""
    if check_out is None:
        return []
    window = credited_window(_utc(check_in), _utc(check_out), _utc(shift_start), _utc(shift_end))
    return split_by_day(window[0], window[1], zone) if window else []


def credit_days(check_in: datetime, check_out: datetime | None, shift_start: datetime | None,
                shift_end: datetime | None, zone: ZoneInfo = SHANGHAI) -> list[date]:
    return [d for d, _m in credit_parts(check_in, check_out, shift_start, shift_end, zone)]


def _flags(text: str | None) -> list[str]:
    return [f for f in (text or "").split(",") if f]


def recompute_days(conn: Any, volunteer_id: int, days: Iterable[date], *, cap_minutes: int,
                   zone: ZoneInfo = SHANGHAI) -> dict[int, tuple[int, str]]:
    """Rewrite the volunteer's credit on `days` from the records themselves.

    Returns, for every record with credit on those days, its credited minutes (all days) and flags.
    """
    wanted = sorted(set(days))
    if not wanted:
        return {}
    day_set = set(wanted)
    since = datetime.combine(wanted[0], time(), tzinfo=zone)
    until = datetime.combine(wanted[-1] + timedelta(days=1), time(), tzinfo=zone)
    rows = conn.execute(_RECORDS, {"vid": volunteer_id, "since": since, "until": until}).all()

    room = {d: cap_minutes for d in wanted}
    plan: list[tuple[Any, list[tuple[date, int]], dict[date, int]]] = []
    rejected: list[Any] = []
    for r in rows:  # check-in order: earlier records keep their minutes
        if r.review_status == REVIEW_REJECTED:
            rejected.append(r)
            continue
        parts = credit_parts(r.check_in_at, r.check_out_at, r.starts_at, r.ends_at, zone)
        given: dict[date, int] = {}
        for day, minutes in parts:
            if day in day_set:
                given[day] = min(minutes, room[day])
                room[day] -= given[day]
        if given:
            plan.append((r, parts, given))

    # Credit rows on these days belong to records read above; none with minutes means nothing to delete
    # (the common check-out: one statement fewer in a key-date burst).
    if any(r.credited_minutes for r in rows if r.review_status != REVIEW_REJECTED):
        conn.execute(delete(C).where(C.c.volunteer_id == volunteer_id, C.c.work_date.in_(wanted)))
    if any(r.credited_minutes for r in rejected):
        conn.execute(delete(C).where(C.c.attendance_id.in_([r.id for r in rejected])))
    new_rows = [{"attendance_id": r.id, "volunteer_id": volunteer_id, "work_date": day, "minutes": minutes}
                for r, _parts, given in plan for day, minutes in given.items() if minutes > 0]
    if new_rows:
        conn.execute(insert(C), new_rows)
    # Credit of a night record on a day outside `days` stays as stored; read it for the totals.
    elsewhere_ids = [r.id for r, parts, _g in plan if any(d not in day_set for d, _m in parts)]
    elsewhere = dict(conn.execute(select(C.c.attendance_id, func.sum(C.c.minutes))
                                  .where(C.c.attendance_id.in_(elsewhere_ids))
                                  .group_by(C.c.attendance_id)).all()) if elsewhere_ids else {}

    out: dict[int, tuple[int, str]] = {}
    updates = []
    for r, parts, given in plan:
        total = sum(given.values()) + int(elsewhere.get(r.id) or 0)
        cut = total < sum(m for _d, m in parts)
        flags, review = _flags(r.flags), r.review_status
        if cut and FLAG_DAILY_CAP not in flags:
            flags.append(FLAG_DAILY_CAP)
            if review == REVIEW_NONE:  # an approval stands: the cut is shown by the flag
                review = REVIEW_FLAGGED
        elif not cut and FLAG_DAILY_CAP in flags:
            flags.remove(FLAG_DAILY_CAP)
            if review == REVIEW_FLAGGED and not flags:
                review = REVIEW_NONE
        text = ",".join(flags)
        out[r.id] = (total, text)
        if (total, text, review) != (r.credited_minutes, r.flags or "", r.review_status):
            updates.append({"b_id": r.id, "b_minutes": total, "b_flags": text, "b_review": review})
    for r in rejected:
        if r.credited_minutes:
            updates.append({"b_id": r.id, "b_minutes": 0, "b_flags": r.flags or "", "b_review": r.review_status})
    if updates:
        conn.execute(_UPDATE, updates)
    return out
