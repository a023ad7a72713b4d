"""Coordinators' review of patrol records: the live board, the attendance list, approving or
rejecting flagged records, and hand-made hour adjustments (never overwriting a scan record)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models.attendance import (ATT_OPEN, REVIEW_APPROVED, REVIEW_REJECTED, Attendance, ScanRecord,
                               HourAdjustment)
from models.event import Event, Shift
from models.point import PatrolPoint
from models.user import User
from models.volunteer import Volunteer
from services.checkin import ScanRules
from services.clock import Clock, system_clock
from services.credits import credit_days, recompute_days
from services.audit_log import record_action
from services.errors import DomainError
from services.hours import floor_hours
from services.i18n import _
from services.transactions import lock_volunteer, write_transaction

A = Attendance.__table__
V = Volunteer.__table__
P = PatrolPoint.__table__
E = Event.__table__
H = HourAdjustment.__table__
U = User.__table__
SH = Shift.__table__
MAX_ADJUST_MINUTES = 24 * 60
PAGE_SIZE = 50


@dataclass(frozen=True)
class AttendanceRow:
    id: int
    volunteer_id: int
    name: str
    team: str | None
    vest_no: str | None
    point_id: int | None
    point_name: str | None
    event_name: str | None
    check_in_at: datetime
    check_out_at: datetime | None
    status: str
    source: str
    credited_minutes: int
    walk_in: bool
    flags: tuple[str, ...]
    review_status: str
    recorded_by: str | None

    @property
    def credited_hours(self) -> float:
        return floor_hours(self.credited_minutes)


def _base_query():
    return (select(A.c.id, A.c.volunteer_id, V.c.name, V.c.team, V.c.vest_no, A.c.point_id, P.c.name.label("pname"),
                   E.c.name.label("ename"), A.c.check_in_at, A.c.check_out_at, A.c.status, A.c.source,
                   A.c.credited_minutes, A.c.walk_in, A.c.flags, A.c.review_status, U.c.username)
            .select_from(A.join(V, V.c.id == A.c.volunteer_id).outerjoin(P, P.c.id == A.c.point_id)
                         .outerjoin(E, E.c.id == A.c.event_id).outerjoin(U, U.c.id == A.c.recorded_by_user_id)))


def _to_row(r) -> AttendanceRow:
    return AttendanceRow(r.id, r.volunteer_id, r.name, r.team, r.vest_no, r.point_id, r.pname, r.ename,
                         r.check_in_at, r.check_out_at, r.status, r.source, r.credited_minutes, r.walk_in,
                         tuple(f for f in (r.flags or "").split(",") if f), r.review_status, r.username)


def on_patrol(session: Session) -> list[AttendanceRow]:
    """Who is checked in now, where (the board on a key-date night)."""
    rows = session.execute(_base_query().where(A.c.status == ATT_OPEN).order_by(P.c.code, A.c.check_in_at)).all()
    return [_to_row(r) for r in rows]


@dataclass(frozen=True)
class AttendancePage:
    rows: list[AttendanceRow]
    total: int
    page: int
    pages: int


def list_attendances(session: Session, *, event_id: int | None = None, point_id: int | None = None,
                     team: str | None = None, review: str | None = None, flag: str | None = None,
                     source: str | None = None, volunteer_id: int | None = None, walk_in: bool | None = None,
                     page: int = 1, per_page: int = PAGE_SIZE) -> AttendancePage:
    stmt = _base_query()
    if event_id:
        stmt = stmt.where(A.c.event_id == event_id)
    if point_id:
        stmt = stmt.where(or_(A.c.point_id == point_id, A.c.checkout_point_id == point_id))
    if team:
        stmt = stmt.where(V.c.team == team)
    if review:
        stmt = stmt.where(A.c.review_status == review)
    if flag:
        stmt = stmt.where(A.c.flags.like(f"%{flag}%"))
    if source:
        stmt = stmt.where(A.c.source == source)
    if volunteer_id:
        stmt = stmt.where(A.c.volunteer_id == volunteer_id)
    if walk_in is not None:
        stmt = stmt.where(A.c.walk_in.is_(walk_in))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    rows = session.execute(stmt.order_by(A.c.check_in_at.desc(), A.c.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return AttendancePage([_to_row(r) for r in rows], total, page, pages)


def review_attendance(session: Session, attendance_id: int, decision: str, *, by_user_id: int,
                      clock: Clock = system_clock, rules: ScanRules = ScanRules(),
                      actor: str | None = None) -> None:
    """Approve or reject a record after looking at it; a rejected record credits nothing.

    The daily cap is applied again to the record's days, whatever the order of reviews: approving a
    record rejected earlier takes minutes back from the records after it, a rejection gives its
    minutes to them.
    """
    if decision not in (REVIEW_APPROVED, REVIEW_REJECTED):
        raise DomainError("bad_decision", _("只能“通过”或“不通过”"))
    volunteer_id = session.execute(select(A.c.volunteer_id).where(A.c.id == attendance_id)).scalar()
    session.rollback()
    if volunteer_id is None:
        raise DomainError("not_found", _("签到记录不存在"))
    with write_transaction(session) as conn:
        lock_volunteer(conn, volunteer_id)
        att = conn.execute(select(A.c.status, A.c.check_in_at, A.c.check_out_at, SH.c.starts_at, SH.c.ends_at)
                           .select_from(A.outerjoin(SH, SH.c.id == A.c.shift_id))
                           .where(A.c.id == attendance_id)).one()
        if att.status == ATT_OPEN:
            raise DomainError("still_open", _("该记录尚未签退，签退后再审核"))
        conn.execute(update(A).where(A.c.id == attendance_id)
                     .values(review_status=decision, reviewed_by_user_id=by_user_id, reviewed_at=clock()))
        recompute_days(conn, volunteer_id, credit_days(att.check_in_at, att.check_out_at, att.starts_at, att.ends_at,
                                                       rules.zone),
                       cap_minutes=rules.daily_cap_minutes, zone=rules.zone)
    record_action(session, actor or f"user:{by_user_id}", "review", f"attendance:{attendance_id}", decision, clock=clock)
    session.commit()


@dataclass(frozen=True)
class AdjustmentRow:
    id: int
    work_date: date
    minutes: int
    reason: str
    created_by: str | None
    created_at: datetime
    attendance_id: int | None


def add_adjustment(session: Session, volunteer_id: int, *, minutes: int, work_date: date, reason: str,
                   by_user_id: int, attendance_id: int | None = None, clock: Clock = system_clock,
                   actor: str | None = None) -> AdjustmentRow:
    """Add (or, with negative minutes, remove) time by hand: a reason is mandatory."""
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise DomainError("reason_required", _("请填写调整原因"))
    if minutes == 0 or abs(minutes) > MAX_ADJUST_MINUTES:
        raise DomainError("bad_minutes", _("调整时长应在 ±24 小时之内且不为 0"))
    if session.get(Volunteer, volunteer_id) is None:
        raise DomainError("not_found", _("志愿者不存在"))
    row = HourAdjustment(volunteer_id=volunteer_id, attendance_id=attendance_id, work_date=work_date,
                         minutes=minutes, reason=reason, created_by_user_id=by_user_id, created_at=clock())
    session.add(row)
    record_action(session, actor or f"user:{by_user_id}", "adjust", f"volunteer:{volunteer_id}",
                  f"minutes={minutes:+d}; work_date={work_date.isoformat()}; reason={reason}", clock=clock)
    session.commit()
    return AdjustmentRow(row.id, row.work_date, row.minutes, row.reason, None, row.created_at, row.attendance_id)


def list_adjustments(session: Session, volunteer_id: int) -> list[AdjustmentRow]:
    rows = session.execute(select(H.c.id, H.c.work_date, H.c.minutes, H.c.reason, U.c.username, H.c.created_at,
                                  H.c.attendance_id)
                           .select_from(H.outerjoin(U, U.c.id == H.c.created_by_user_id))
                           .where(H.c.volunteer_id == volunteer_id).order_by(H.c.created_at.desc())).all()
    return [AdjustmentRow(*r) for r in rows]


def find_volunteer(session: Session, ident: str) -> Volunteer:
    """By phone number or vest number (what a team leader has at hand on the night)."""
    from services.phones import normalise_phone
    from services.vests import volunteer_by_vest

    ident = (ident or "").strip()
    try:
        phone = normalise_phone(ident)
    except DomainError:
        phone = None
    vol = session.scalar(select(Volunteer).where(Volunteer.phone == phone)) if phone else None
    if vol is None and ident:
        vol = volunteer_by_vest(session, ident)
    if vol is None:
        raise DomainError("not_found", _("找不到手机号或马甲编号为“%(i)s”的志愿者", i=ident))
    return vol


@dataclass(frozen=True)
class RefusedOfflineScan:
    """A scan a phone kept offline that came too late (or under a later record) to count by
    itself: the coordinators decide, e.g. with an hour adjustment."""
    id: int
    volunteer_id: int
    name: str
    team: str | None
    point_name: str | None
    client_time: datetime | None
    received_at: datetime | None
    code: str


def refused_offline_scans(session: Session, *, limit: int = 50) -> list[RefusedOfflineScan]:
    from services.checkin import OFFLINE_REFUSALS

    S = ScanRecord.__table__
    rows = session.execute(select(S.c.id, S.c.volunteer_id, V.c.name, V.c.team, P.c.name.label("pname"),
                                  S.c.client_time, S.c.received_at, S.c.code)
                           .select_from(S.join(V, V.c.id == S.c.volunteer_id).outerjoin(P, P.c.id == S.c.point_id))
                           .where(S.c.code.in_(OFFLINE_REFUSALS))
                           .order_by(S.c.received_at.desc(), S.c.id.desc()).limit(limit)).all()
    return [RefusedOfflineScan(r.id, r.volunteer_id, r.name, r.team, r.pname, r.client_time, r.received_at, r.code)
            for r in rows]
