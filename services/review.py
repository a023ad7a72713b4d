"""Coordinators' review of patrol records: the live board, the attendance list, approving or
rejecting flagged records, and hand-made hour adjustments (never overwriting a scan record)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from models.attendance import (ATT_OPEN, REVIEW_APPROVED, REVIEW_FLAGGED, REVIEW_REJECTED, Attendance, ScanRecord,
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


def on_patrol(session: Session, *, point_id: int | None = None, limit: int | None = None) -> list[AttendanceRow]:
    """Who is checked in now, where (the board on a key-date night): one point's, or the first
    `limit` of everyone's (a district's 1,000 on patrol made a 460 KB page every 10 s)."""
    stmt = _base_query().where(A.c.status == ATT_OPEN)
    if point_id:
        stmt = stmt.where(A.c.point_id == point_id)
    stmt = stmt.order_by(P.c.code, A.c.check_in_at, A.c.id)
    if limit:
        stmt = stmt.limit(limit)
    return [_to_row(r) for r in session.execute(stmt).all()]


@dataclass(frozen=True)
class PointOnPatrol:
    point_id: int | None
    code: str | None
    name: str | None
    count: int


def on_patrol_by_point(session: Session) -> list[PointOnPatrol]:
    """How many are on patrol at each point: the board's summary, one grouped query."""
    rows = session.execute(select(A.c.point_id, P.c.code, P.c.name, func.count(A.c.id))
                           .select_from(A.outerjoin(P, P.c.id == A.c.point_id))
                           .where(A.c.status == ATT_OPEN).group_by(A.c.point_id, P.c.code, P.c.name)
                           .order_by(P.c.code)).all()
    return [PointOnPatrol(*r) for r in rows]


@dataclass(frozen=True)
class AttendancePage:
    rows: list[AttendanceRow]
    total: int
    page: int
    pages: int
    # Keyset cursors for the neighbouring pages (None at either end): deep pages cost the same as
    # the first, where OFFSET read and threw away every row before them.
    newer: str | None = None
    older: str | None = None


def list_attendances(session: Session, *, event_id: int | None = None, point_id: int | None = None,
                     team: str | None = None, review: str | None = None, flag: str | None = None,
                     source: str | None = None, volunteer_id: int | None = None, walk_in: bool | None = None,
                     page: int = 1, per_page: int = PAGE_SIZE, cursor: str | None = None) -> AttendancePage:
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
    newest_first = (A.c.check_in_at.desc(), A.c.id.desc())
    oldest_first = (A.c.check_in_at.asc(), A.c.id.asc())
    if not cursor:
        page = min(max(page, 1), pages)
        rows = session.execute(stmt.order_by(*newest_first).offset((page - 1) * per_page).limit(per_page + 1)).all()
        more = len(rows) > per_page
        rows = rows[:per_page]
        newer = _cursor("n", rows[0]) if page > 1 and rows else None
        return AttendancePage([_to_row(r) for r in rows], total, page, pages, newer,
                              _cursor("o", rows[-1]) if more else None)
    kind, at, last_id = _parse_cursor(cursor)
    if kind == "last":
        rows = session.execute(stmt.order_by(*oldest_first).limit(per_page)).all()[::-1]
        newer = _cursor("n", rows[0]) if rows and total > len(rows) else None
        return AttendancePage([_to_row(r) for r in rows], total, pages, pages, newer, None)
    if kind == "o":
        rows = session.execute(stmt.where(or_(A.c.check_in_at < at, and_(A.c.check_in_at == at, A.c.id < last_id)))
                               .order_by(*newest_first).limit(per_page + 1)).all()
        more = len(rows) > per_page
        rows = rows[:per_page]
        return AttendancePage([_to_row(r) for r in rows], total, 0, pages,
                              _cursor("n", rows[0]) if rows else None, _cursor("o", rows[-1]) if more and rows else None)
    rows = session.execute(stmt.where(or_(A.c.check_in_at > at, and_(A.c.check_in_at == at, A.c.id > last_id)))
                           .order_by(*oldest_first).limit(per_page + 1)).all()
    more = len(rows) > per_page
    rows = rows[:per_page][::-1]
    return AttendancePage([_to_row(r) for r in rows], total, 0, pages,
                          _cursor("n", rows[0]) if more and rows else None, _cursor("o", rows[-1]) if rows else None)


def _cursor(kind: str, row) -> str:
    return f"{kind}{row.check_in_at.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S.%f')}_{row.id}"


def _parse_cursor(cursor: str) -> tuple[str, datetime | None, int]:
    """`last`, or `o`/`n` (older / newer than) + UTC time + `_` + id; anything else is the first page."""
    if cursor == "last":
        return "last", None, 0
    try:
        stamp, _sep, ident = cursor[1:].partition("_")
        at = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=timezone.utc)
        if cursor[0] not in "on":
            raise ValueError(cursor)
        return cursor[0], at, int(ident)
    except ValueError:
        raise DomainError("bad_cursor", _("页码无效，请从第一页开始")) from None


def review_attendance(session: Session, attendance_id: int, decision: str, *, by_user_id: int,
                      clock: Clock = system_clock, rules: ScanRules = ScanRules(),
                      actor: str | None = None, reason: str = "") -> None:
    """Approve or reject a record after looking at it; a rejected record credits nothing.

    The daily cap is applied again to the record's days, whatever the order of reviews: approving a
    record rejected earlier takes minutes back from the records after it, a rejection gives its
    minutes to them. A record may be decided while the volunteer is still out (the evidence is
    there from the check-in); a new flag at check-out reopens it (`services.checkin._close`).
    A rejection needs a reason, kept in the action log.
    """
    if decision not in (REVIEW_APPROVED, REVIEW_REJECTED):
        raise DomainError("bad_decision", _("只能“通过”或“不通过”"))
    reason = (reason or "").strip()[:200]
    if decision == REVIEW_REJECTED and len(reason) < 2:
        raise DomainError("reason_required", _("不通过时请填写原因"))
    volunteer_id = session.execute(select(A.c.volunteer_id).where(A.c.id == attendance_id)).scalar()
    session.rollback()
    if volunteer_id is None:
        raise DomainError("not_found", _("签到记录不存在"))
    with write_transaction(session) as conn:
        lock_volunteer(conn, volunteer_id)
        att = conn.execute(select(A.c.status, A.c.check_in_at, A.c.check_out_at, SH.c.starts_at, SH.c.ends_at)
                           .select_from(A.outerjoin(SH, SH.c.id == A.c.shift_id))
                           .where(A.c.id == attendance_id)).one()
        conn.execute(update(A).where(A.c.id == attendance_id)
                     .values(review_status=decision, reviewed_by_user_id=by_user_id, reviewed_at=clock()))
        recompute_days(conn, volunteer_id, credit_days(att.check_in_at, att.check_out_at, att.starts_at, att.ends_at,
                                                       rules.zone),
                       cap_minutes=rules.daily_cap_minutes, zone=rules.zone)
    record_action(session, actor or f"user:{by_user_id}", "review", f"attendance:{attendance_id}",
                  f"{decision}; reason={reason}" if reason else decision, clock=clock)
    session.commit()


@dataclass(frozen=True)
class BulkResult:
    decided: int
    skipped: int


def review_many(session: Session, attendance_ids: list[int], decision: str, *, by_user_id: int,
                clock: Clock = system_clock, rules: ScanRules = ScanRules(), actor: str | None = None,
                reason: str = "") -> BulkResult:
    """Decide a batch the coordinator has looked at (e.g. every no-location record of a shift).

    Only records still waiting are decided, one by one through the daily-cap rule: a record
    decided by someone else meanwhile is skipped, never overturned.
    """
    if decision not in (REVIEW_APPROVED, REVIEW_REJECTED):
        raise DomainError("bad_decision", _("只能“通过”或“不通过”"))
    if decision == REVIEW_REJECTED and len((reason or "").strip()) < 2:
        raise DomainError("reason_required", _("不通过时请填写原因"))
    ids = sorted(set(attendance_ids))
    if not ids:
        raise DomainError("nothing_selected", _("没有选中任何记录"))
    waiting = set(session.scalars(select(A.c.id).where(A.c.id.in_(ids), A.c.review_status == REVIEW_FLAGGED)))
    session.rollback()
    for att_id in ids:
        if att_id in waiting:
            review_attendance(session, att_id, decision, by_user_id=by_user_id, clock=clock, rules=rules,
                              actor=actor, reason=reason)
    return BulkResult(len(waiting), len(ids) - len(waiting))


def _queue_query(*, shift_id: int | None, flag: str | None, event_id: int | None):
    stmt = _base_query().where(A.c.review_status == REVIEW_FLAGGED)
    if shift_id:
        stmt = stmt.where(A.c.shift_id == shift_id)
    if event_id:
        stmt = stmt.where(A.c.event_id == event_id)
    if flag:
        stmt = stmt.where(A.c.flags.like(f"%{flag}%"))
    return stmt


def review_queue(session: Session, *, shift_id: int | None = None, flag: str | None = None,
                 event_id: int | None = None, limit: int = 200) -> list[AttendanceRow]:
    """Records waiting for a decision, oldest first, optionally one shift's or one flag's."""
    stmt = _queue_query(shift_id=shift_id, flag=flag, event_id=event_id)
    rows = session.execute(stmt.order_by(A.c.check_in_at, A.c.id).limit(limit)).all()
    return [_to_row(r) for r in rows]


QUEUE_PAGE_SIZE = 50


@dataclass(frozen=True)
class QueuePage:
    """One page of the review queue (oldest first) with the total waiting under the same filters
    and keyset cursors to the pages on either side (None at either end)."""

    rows: list[AttendanceRow]
    total: int
    later: str | None = None     # the next page: records after this page's last
    earlier: str | None = None   # the page before: records before this page's first
    per_page: int = QUEUE_PAGE_SIZE


def review_queue_page(session: Session, *, shift_id: int | None = None, flag: str | None = None,
                      event_id: int | None = None, cursor: str | None = None,
                      per_page: int = QUEUE_PAGE_SIZE) -> QueuePage:
    """The review queue a page at a time: a district flags 1 % of half a million records, and
    drawing 5,000 cards each with its evidence took seconds. Keyset on the queue's own order
    (check-in time, id), so a deep page costs what the first does and a record decided meanwhile
    never shifts the rest by one; `n…` is "after", `o…` is "before" (the attendance list's cursors)."""
    stmt = _queue_query(shift_id=shift_id, flag=flag, event_id=event_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    ascending, descending = (A.c.check_in_at.asc(), A.c.id.asc()), (A.c.check_in_at.desc(), A.c.id.desc())
    kind, at, last_id = _parse_cursor(cursor) if cursor else ("", None, 0)
    if kind == "o":
        rows = session.execute(stmt.where(or_(A.c.check_in_at < at, and_(A.c.check_in_at == at, A.c.id < last_id)))
                               .order_by(*descending).limit(per_page + 1)).all()
        more = len(rows) > per_page
        rows = rows[:per_page][::-1]
        if rows:
            return QueuePage([_to_row(r) for r in rows], total, _cursor("n", rows[-1]),
                             _cursor("o", rows[0]) if more else None, per_page)
        kind = ""  # everything before was decided meanwhile: the first page
    if kind == "n":
        stmt_page = stmt.where(or_(A.c.check_in_at > at, and_(A.c.check_in_at == at, A.c.id > last_id)))
    else:
        stmt_page = stmt
    rows = session.execute(stmt_page.order_by(*ascending).limit(per_page + 1)).all()
    more = len(rows) > per_page
    rows = rows[:per_page]
    earlier = _cursor("o", rows[0]) if kind == "n" and rows else None
    return QueuePage([_to_row(r) for r in rows], total, _cursor("n", rows[-1]) if more else None, earlier, per_page)


@dataclass(frozen=True)
class QueueShift:
    shift_id: int
    event_name: str
    point_name: str
    starts_at: datetime
    waiting: int


QUEUE_SHIFTS = 100


def queue_shifts(session: Session, *, limit: int | None = QUEUE_SHIFTS,
                 include: int | None = None) -> list[QueueShift]:
    """The shifts that have records waiting, for the review page's shift picker: the latest
    `limit` of them (a district's year has thousands), and the one `include`d if it is older."""
    stmt = (select(SH.c.id, E.c.name, P.c.name, SH.c.starts_at, func.count(A.c.id))
            .select_from(A.join(SH, SH.c.id == A.c.shift_id).join(E, E.c.id == SH.c.event_id)
                         .join(P, P.c.id == SH.c.point_id))
            .where(A.c.review_status == REVIEW_FLAGGED)
            .group_by(SH.c.id, E.c.name, P.c.name, SH.c.starts_at)
            .order_by(SH.c.starts_at.desc(), P.c.name, SH.c.id))
    rows = [QueueShift(*r) for r in session.execute(stmt.limit(limit) if limit else stmt).all()]
    if include and all(r.shift_id != include for r in rows):
        rows += [QueueShift(*r) for r in session.execute(stmt.where(SH.c.id == include)).all()]
    return rows


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
