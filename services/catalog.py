"""Read-side queries for points and events (the API and pages share them)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.event import Assignment, Event, Shift
from models.point import PatrolPoint
from services.errors import DomainError
from services.i18n import _


@dataclass(frozen=True)
class PointView:
    code: str
    name: str
    address: str | None
    lat: float | None
    lon: float | None
    radius_m: int
    active: bool


@dataclass(frozen=True)
class ShiftView:
    id: int
    point_code: str
    point_name: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    assigned: int


@dataclass(frozen=True)
class EventView:
    id: int
    name: str
    starts_on: date
    ends_on: date
    description: str | None
    shift_count: int
    shifts: list[ShiftView] | None = None


def _point_view(p: PatrolPoint) -> PointView:
    return PointView(p.code, p.name, p.address, p.lat, p.lon, p.radius_m, p.active)


def list_points(session: Session, *, include_inactive: bool = False) -> list[PointView]:
    stmt = select(PatrolPoint).order_by(PatrolPoint.code)
    if not include_inactive:
        stmt = stmt.where(PatrolPoint.active.is_(True))
    return [_point_view(p) for p in session.scalars(stmt)]


def get_point(session: Session, code: str) -> PointView:
    p = session.scalar(select(PatrolPoint).where(PatrolPoint.code == code))
    if p is None:
        raise DomainError("not_found", _("点位“%(c)s”不存在", c=code))
    return _point_view(p)


def list_events(session: Session) -> list[EventView]:
    counts = dict(session.execute(select(Shift.event_id, func.count(Shift.id)).group_by(Shift.event_id)).all())
    events = session.scalars(select(Event).order_by(Event.starts_on.desc(), Event.id))
    return [EventView(e.id, e.name, e.starts_on, e.ends_on, e.description, counts.get(e.id, 0)) for e in events]


def get_event(session: Session, event_id: int) -> EventView:
    e = session.get(Event, event_id)
    if e is None:
        raise DomainError("not_found", _("活动不存在"))
    assigned = dict(session.execute(
        select(Assignment.shift_id, func.count(Assignment.id))
        .join(Shift, Shift.id == Assignment.shift_id).where(Shift.event_id == e.id)
        .group_by(Assignment.shift_id)).all())
    rows = session.execute(select(Shift, PatrolPoint).join(PatrolPoint, PatrolPoint.id == Shift.point_id)
                           .where(Shift.event_id == e.id).order_by(Shift.starts_at, PatrolPoint.code))
    shifts = [ShiftView(s.id, p.code, p.name, s.starts_at, s.ends_at, s.capacity, assigned.get(s.id, 0))
              for s, p in rows]
    return EventView(e.id, e.name, e.starts_on, e.ends_on, e.description, len(shifts), shifts)
