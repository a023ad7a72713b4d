"""Key-date campaigns, their shifts and who is assigned to them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.attendance import Attendance
from models.event import Assignment, Event, Shift
from models.point import PatrolPoint
from models.volunteer import Volunteer
from services.audit_log import record_action
from services.checkin import ScanRules
from services.clock import Clock, local_date, system_clock
from services.credits import credit_days, recompute_days
from services.errors import DomainError
from services.vests import volunteer_by_vest
from services.volunteers import on_roster
from services.i18n import _
from services.lengths import check_length
from services.phones import normalise_phone
from services.transactions import lock_volunteer, write_transaction

_UTC = timezone.utc


def _check_event(name: str, starts_on: date, ends_on: date) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError("required", _("活动名称不能为空"))
    if len(name) > 128:
        raise DomainError("too_long", _("活动名称过长"))
    if ends_on < starts_on:
        raise DomainError("end_before_start", _("结束日期不能早于开始日期"))
    return name


def create_event(session: Session, name: str, starts_on: date, ends_on: date, description: str | None = None) -> Event:
    name = _check_event(name, starts_on, ends_on)
    if session.scalar(select(Event.id).where(Event.name == name)) is not None:
        raise DomainError("name_taken", _("活动“%(n)s”已存在", n=name))
    event = Event(name=name, starts_on=starts_on, ends_on=ends_on, description=(description or "").strip() or None)
    session.add(event)
    session.commit()
    return event


def update_event(session: Session, event_id: int, name: str, starts_on: date, ends_on: date,
                 description: str | None = None) -> Event:
    event = get_event_row(session, event_id)
    name = _check_event(name, starts_on, ends_on)
    if session.scalar(select(Event.id).where(Event.name == name, Event.id != event_id)) is not None:
        raise DomainError("name_taken", _("活动“%(n)s”已存在", n=name))
    event.name, event.starts_on, event.ends_on = name, starts_on, ends_on
    event.description = (description or "").strip() or None
    session.commit()
    return event


def get_event_row(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise DomainError("not_found", _("活动不存在"))
    return event


def _check_shift(starts_at: datetime, ends_at: datetime, capacity: int) -> None:
    if ends_at <= starts_at:
        raise DomainError("end_before_start", _("结束时间必须晚于开始时间"))
    if ends_at - starts_at > timedelta(hours=24):
        raise DomainError("shift_too_long", _("一个班次不能超过 24 小时"))
    if not 1 <= capacity <= 1000:
        raise DomainError("out_of_range", _("人数应为 1 到 1000"))


def save_shift(session: Session, event_id: int, point_code: str, starts_at: datetime, ends_at: datetime,
               capacity: int, note: str | None = None, shift_id: int | None = None, *, actor: str | None = None,
               rules: ScanRules = ScanRules(), clock: Clock = system_clock) -> Shift:
    """Create a shift, or update one when `shift_id` is given; times are aware datetimes.

    Credit is the overlap of presence with the shift's start–end, so moving a shift after patrols
    were checked out must move their credit too: the closed records of the shift are credited again
    for the days of the old and the new times (daily cap included), in the same transaction, and
    the edit goes into the coordinator action log.
    """
    event = get_event_row(session, event_id)
    point = session.scalar(select(PatrolPoint).where(PatrolPoint.code == point_code))
    if point is None:
        raise DomainError("unknown_point", _("点位“%(c)s”不存在", c=point_code))
    _check_shift(starts_at, ends_at, capacity)
    check_length(note, 255, _("备注"))
    old = None
    if shift_id is not None:
        existing = session.get(Shift, shift_id)
        if existing is None or existing.event_id != event.id:
            raise DomainError("not_found", _("班次不存在"))
        old = (existing.point_id, existing.starts_at, existing.ends_at)
    point_id = point.id
    try:
        with write_transaction(session) as conn:
            if shift_id is None:
                shift = Shift(event_id=event.id)
                session.add(shift)
            else:
                shift = session.get(Shift, shift_id)
            shift.point_id, shift.starts_at, shift.ends_at = point_id, starts_at, ends_at
            shift.capacity, shift.note = capacity, (note or "").strip() or None
            session.flush()
            if old is not None and old != (point_id, starts_at, ends_at):
                count = _recredit_shift(conn, shift_id, old[1], old[2], rules)
                record_action(session, actor or "unknown", "edit_shift", f"shift:{shift_id}",
                              f"point={old[0]}->{point_id}; starts_at={old[1].isoformat()}->{starts_at.isoformat()}; "
                              f"ends_at={old[2].isoformat()}->{ends_at.isoformat()}; recredited={count}",
                              clock=clock)
                session.flush()
    except IntegrityError:
        raise DomainError("shift_taken", _("该点位在同一开始时间已有班次")) from None
    return shift


def _recredit_shift(conn, shift_id: int, old_start: datetime, old_end: datetime, rules: ScanRules) -> int:
    """Credit the shift's closed records again, for the days of its old and its new times; returns
    how many records. Volunteers are locked in id order, as a scan would lock each of them."""
    A, SH = Attendance.__table__, Shift.__table__
    rows = conn.execute(select(A.c.volunteer_id, A.c.check_in_at, A.c.check_out_at, SH.c.starts_at, SH.c.ends_at)
                        .select_from(A.join(SH, SH.c.id == A.c.shift_id))
                        .where(A.c.shift_id == shift_id, A.c.check_out_at.is_not(None))
                        .order_by(A.c.volunteer_id)).all()
    days: dict[int, set[date]] = {}
    for r in rows:
        wanted = days.setdefault(r.volunteer_id, set())
        wanted.update(credit_days(r.check_in_at, r.check_out_at, old_start, old_end, rules.zone))
        wanted.update(credit_days(r.check_in_at, r.check_out_at, r.starts_at, r.ends_at, rules.zone))
    for volunteer_id in sorted(days):
        lock_volunteer(conn, volunteer_id)
        recompute_days(conn, volunteer_id, days[volunteer_id], cap_minutes=rules.daily_cap_minutes, zone=rules.zone)
    return len(rows)


def delete_shift(session: Session, shift_id: int) -> None:
    shift = session.get(Shift, shift_id)
    if shift is None:
        raise DomainError("not_found", _("班次不存在"))
    session.execute(delete(Assignment).where(Assignment.shift_id == shift_id))
    session.delete(shift)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise DomainError("shift_in_use", _("该班次已有签到记录，不能删除")) from None


@dataclass(frozen=True)
class AssignmentRow:
    volunteer_id: int
    name: str
    team: str | None
    vest_no: str | None
    status: str


@dataclass(frozen=True)
class AssignResult:
    added: int
    already: int
    not_found: list[str]


def list_assignments(session: Session, shift_id: int) -> list[AssignmentRow]:
    rows = session.execute(select(Assignment, Volunteer).join(Volunteer, Volunteer.id == Assignment.volunteer_id)
                           .where(Assignment.shift_id == shift_id).order_by(Volunteer.team, Volunteer.vest_no))
    return [AssignmentRow(v.id, v.name, v.team, v.vest_no, a.status) for a, v in rows]


def assign_volunteers(session: Session, shift_id: int, identifiers: list[str]) -> AssignResult:
    """Assign volunteers named by phone number or vest number (one per line in the form).

    Only volunteers on the roster on the shift's day (Shanghai): a withdrawal dated after the shift
    still lets them patrol it, one in effect by then does not."""
    shift = session.get(Shift, shift_id)
    if shift is None:
        raise DomainError("not_found", _("班次不存在"))
    on_the_day = on_roster(local_date(shift.starts_at if shift.starts_at.tzinfo
                                      else shift.starts_at.replace(tzinfo=timezone.utc)))
    wanted = [i.strip() for i in identifiers if i and i.strip()]
    existing = set(session.scalars(select(Assignment.volunteer_id).where(Assignment.shift_id == shift_id)))
    added = already = 0
    missing: list[str] = []
    for ident in wanted:
        try:
            phone = normalise_phone(ident)
        except DomainError:
            phone = None
        vol = (session.scalar(select(Volunteer).where(Volunteer.phone == phone, on_the_day))
               if phone else None)
        if vol is None:
            try:
                vol = volunteer_by_vest(session, ident, on_the_day)
            except DomainError:
                vol = None  # several volunteers fit: reported as not found rather than guessed
        if vol is None:
            missing.append(ident)
        elif vol.id in existing:
            already += 1
        else:
            session.add(Assignment(shift_id=shift_id, volunteer_id=vol.id))
            existing.add(vol.id)
            added += 1
    session.commit()
    return AssignResult(added, already, missing)


def unassign_volunteer(session: Session, shift_id: int, volunteer_id: int) -> None:
    session.execute(delete(Assignment).where(Assignment.shift_id == shift_id, Assignment.volunteer_id == volunteer_id))
    session.commit()


def assignment_counts(session: Session, shift_ids: list[int]) -> dict[int, int]:
    if not shift_ids:
        return {}
    return dict(session.execute(select(Assignment.shift_id, func.count(Assignment.id))
                                .where(Assignment.shift_id.in_(shift_ids)).group_by(Assignment.shift_id)).all())


# --- one campaign's shifts, a page at a time --------------------------------------------------------

SHIFT_PAGE_SIZE = 100


@dataclass(frozen=True)
class ShiftLine:
    id: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    note: str | None
    point_code: str
    point_name: str
    assigned: int


@dataclass(frozen=True)
class ShiftDay:
    """One day of a campaign: how many shifts, places and people assigned (the summary on top)."""

    day: date
    shifts: int
    capacity: int
    assigned: int


@dataclass(frozen=True)
class ShiftPage:
    rows: list[ShiftLine]
    total: int
    days: list[ShiftDay]
    later: str | None = None
    earlier: str | None = None


def _shift_cursor(kind: str, line: ShiftLine) -> str:
    at = line.starts_at if line.starts_at.tzinfo else line.starts_at.replace(tzinfo=_UTC)
    return f"{kind}{at.astimezone(_UTC).strftime('%Y%m%dT%H%M%S.%f')}_{line.id}"


def _parse_shift_cursor(cursor: str) -> tuple[str, datetime, int]:
    try:
        stamp, _sep, ident = cursor[1:].partition("_")
        if cursor[0] not in "on":
            raise ValueError(cursor)
        return cursor[0], datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=_UTC), int(ident)
    except (ValueError, IndexError):
        raise DomainError("bad_cursor", _("页码无效，请从第一页开始")) from None


def event_shifts_page(session: Session, event_id: int, *, zone, cursor: str | None = None,
                      per_page: int = SHIFT_PAGE_SIZE) -> ShiftPage:
    """A campaign's shifts in time order, `per_page` at a time (keyset on start time and id), with
    a summary per local day: a district campaign has 500 points × 5 days, and the page listed
    every shift with a lazy load of its point each."""
    from sqlalchemy import and_, or_

    assigned = (select(Assignment.shift_id, func.count(Assignment.id).label("n")).group_by(Assignment.shift_id)
                .subquery())
    base = (select(Shift.id, Shift.starts_at, Shift.ends_at, Shift.capacity, Shift.note, PatrolPoint.code,
                   PatrolPoint.name, func.coalesce(assigned.c.n, 0))
            .join(PatrolPoint, PatrolPoint.id == Shift.point_id).outerjoin(assigned, assigned.c.shift_id == Shift.id)
            .where(Shift.event_id == event_id))
    days: dict[date, list[int]] = {}
    for starts_at, cap, n in session.execute(
            select(Shift.starts_at, Shift.capacity, func.coalesce(assigned.c.n, 0))
            .outerjoin(assigned, assigned.c.shift_id == Shift.id).where(Shift.event_id == event_id)).all():
        at = starts_at if starts_at.tzinfo else starts_at.replace(tzinfo=_UTC)
        day = days.setdefault(at.astimezone(zone).date(), [0, 0, 0])
        day[0], day[1], day[2] = day[0] + 1, day[1] + cap, day[2] + n
    summary = [ShiftDay(d, *v) for d, v in sorted(days.items())]
    total = sum(d.shifts for d in summary)
    kind, at, last_id = _parse_shift_cursor(cursor) if cursor else ("", None, 0)
    if kind == "o":
        rows = [ShiftLine(*r) for r in session.execute(
            base.where(or_(Shift.starts_at < at, and_(Shift.starts_at == at, Shift.id < last_id)))
            .order_by(Shift.starts_at.desc(), Shift.id.desc()).limit(per_page + 1)).all()]
        more = len(rows) > per_page
        rows = rows[:per_page][::-1]
        if rows:
            return ShiftPage(rows, total, summary, _shift_cursor("n", rows[-1]),
                             _shift_cursor("o", rows[0]) if more else None)
        kind = ""
    stmt = base.where(or_(Shift.starts_at > at, and_(Shift.starts_at == at, Shift.id > last_id))) if kind == "n" else base
    rows = [ShiftLine(*r) for r in session.execute(stmt.order_by(Shift.starts_at, Shift.id).limit(per_page + 1)).all()]
    more = len(rows) > per_page
    rows = rows[:per_page]
    return ShiftPage(rows, total, summary, _shift_cursor("n", rows[-1]) if more else None,
                     _shift_cursor("o", rows[0]) if kind == "n" and rows else None)
