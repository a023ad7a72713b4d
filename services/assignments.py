"""A volunteer's own shifts: confirm, ask for leave (请假) and take it back.

Why here and not in the bot: the bot's buttons, the reminders' buttons and the /me page do the
same thing, and leave must reach someone — each 请假 (and each take-back) is a message to the
coordinators and the leader of the volunteer's team, queued through the outbox in the same
transaction. Leave is possible only before the shift starts: after that the office must hear it
by phone, not find it later in a log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.messaging import OUT_PENDING, Message, MessageRecipient, OutboxItem
from models.event import ASSIGNMENT_ASSIGNED, ASSIGNMENT_CONFIRMED, ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.point import PatrolPoint
from models.user import ROLE_LEADER, STAFF_ROLES, User
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _, in_programme_language
from services.volunteers import withdrawal_in_effect
from services.messaging import post_message, telegram_text
from services.outbox import Recipient
from services.settings import OFFICE_PHONE, get_setting

IN_PROGRESS = "in_progress"
# Leave changes to one shift within this many minutes make one message to the office.
LEAVE_MERGE_MINUTES = 10


@dataclass(frozen=True)
class MyShift:
    shift_id: int
    event_name: str
    point_name: str
    starts_at: datetime
    ends_at: datetime
    status: str          # assigned | confirmed | declined | in_progress
    can_change: bool     # before the start: confirm / leave / take leave back


@dataclass(frozen=True)
class ShiftChange:
    shift: MyShift
    changed: bool        # False when it already was so (a second tap, an old button)


def _status(assignment_status: str, starts_at: datetime, now: datetime) -> str:
    if starts_at <= now and assignment_status != ASSIGNMENT_DECLINED:
        return IN_PROGRESS
    return assignment_status


def _rows(session: Session, volunteer_id: int):
    return (select(Assignment, Shift, Event.name, PatrolPoint.name)
            .join(Shift, Shift.id == Assignment.shift_id).join(Event, Event.id == Shift.event_id)
            .join(PatrolPoint, PatrolPoint.id == Shift.point_id).where(Assignment.volunteer_id == volunteer_id))


def _view(a: Assignment, s: Shift, event_name: str, point_name: str, now: datetime) -> MyShift:
    return MyShift(s.id, event_name, point_name, s.starts_at, s.ends_at, _status(a.status, s.starts_at, now),
                   s.starts_at > now)


def my_shifts(session: Session, volunteer_id: int, *, clock: Clock = system_clock, limit: int = 10) -> list[MyShift]:
    """Shifts not yet over, with leave shown too (a volunteer must see that their leave was taken)."""
    now = clock()
    rows = session.execute(_rows(session, volunteer_id).where(Shift.ends_at > now)
                           .order_by(Shift.starts_at).limit(limit)).all()
    return [_view(a, s, e, p, now) for a, s, e, p in rows]


def get_my_shift(session: Session, shift_id: int, volunteer_id: int, *, clock: Clock = system_clock) -> MyShift:
    row = session.execute(_rows(session, volunteer_id).where(Shift.id == shift_id)).first()
    if row is None:
        raise DomainError("not_assigned", _("您不在这个班次的名单中"))
    return _view(*row, clock())


def office_phone(session: Session) -> str:
    return get_setting(session, OFFICE_PHONE).strip()


def started_refusal(session: Session) -> str:
    phone = office_phone(session)
    return (_("班次已开始，请直接联系平安办（电话 %(p)s）", p=phone) if phone
            else _("班次已开始，请直接联系平安办"))


def _change(session: Session, shift_id: int, volunteer_id: int, new_status: str, *, allowed_from: tuple[str, ...],
            clock: Clock) -> tuple[ShiftChange, str, Shift, Volunteer]:
    now = clock()
    row = session.execute(_rows(session, volunteer_id).where(Shift.id == shift_id)
                          .with_for_update(of=Assignment)).first()
    if row is None:
        raise DomainError("not_assigned", _("您不在这个班次的名单中"))
    a, s, event_name, point_name = row
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None or withdrawal_in_effect(volunteer.status, volunteer.withdrawn_on,
                                                 local_date(s.starts_at)):
        raise DomainError("volunteer_withdrawn", _("志愿者不存在或已退出"))
    if s.starts_at <= now:
        raise DomainError("shift_started", started_refusal(session))
    previous = a.status
    changed = previous != new_status
    if changed and previous not in allowed_from:
        raise DomainError("not_on_leave", _("您没有请假，无需撤销"))
    if changed:
        a.status = new_status
        a.updated_at = now
    return ShiftChange(_view(a, s, event_name, point_name, now), changed), previous, s, volunteer


def confirm_shift(session: Session, shift_id: int, volunteer_id: int, *, clock: Clock = system_clock) -> ShiftChange:
    """确认: the volunteer will come. Confirming after a 请假 takes the leave back (and the office hears it)."""
    return _apply(session, shift_id, volunteer_id, ASSIGNMENT_CONFIRMED,
                  (ASSIGNMENT_ASSIGNED, ASSIGNMENT_DECLINED), clock)


def request_leave(session: Session, shift_id: int, volunteer_id: int, *, clock: Clock = system_clock) -> ShiftChange:
    """请假: only before the start; the coordinators and the team's leader are told at once."""
    return _apply(session, shift_id, volunteer_id, ASSIGNMENT_DECLINED,
                  (ASSIGNMENT_ASSIGNED, ASSIGNMENT_CONFIRMED), clock)


def undo_leave(session: Session, shift_id: int, volunteer_id: int, *, clock: Clock = system_clock) -> ShiftChange:
    """撤销请假 until the shift starts: back on the list as confirmed, and the office is told."""
    return _apply(session, shift_id, volunteer_id, ASSIGNMENT_CONFIRMED, (ASSIGNMENT_DECLINED,), clock)


def _apply(session: Session, shift_id: int, volunteer_id: int, new_status: str, allowed_from: tuple[str, ...],
           clock: Clock) -> ShiftChange:
    try:
        result, previous, s, vol = _change(session, shift_id, volunteer_id, new_status, allowed_from=allowed_from,
                                           clock=clock)
        if result.changed and ASSIGNMENT_DECLINED in (previous, new_status):
            _tell_office(session, vol, s, result.shift, leave=new_status == ASSIGNMENT_DECLINED, clock=clock)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def office_recipients(session: Session, team: str | None) -> list[Recipient]:
    """Who hears about a volunteer's leave: active admins and coordinators, and their team's leaders."""
    cond = User.role.in_(STAFF_ROLES)
    if team:
        cond = or_(cond, (User.role == ROLE_LEADER) & (User.team == team))
    return [Recipient(user_id=uid) for uid in session.scalars(select(User.id).where(User.active.is_(True), cond)
                                                               .order_by(User.id))]


def _when(shift: MyShift) -> str:
    start, end = shift.starts_at.astimezone(SHANGHAI), shift.ends_at.astimezone(SHANGHAI)
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"


def _tell_office(session: Session, vol: Volunteer, s: Shift, shift: MyShift, *, leave: bool, clock: Clock) -> None:
    now = clock()
    recipients = office_recipients(session, vol.team)
    if not recipients:
        return
    who = vol.name + (f"（{vol.team}）" if vol.team else "")
    with in_programme_language():   # to the office: in Chinese, whatever the volunteer's phone reads
        if leave:
            title = _("请假：%(n)s", n=vol.name)
            body = _("%(who)s 请假，不能参加 %(w)s 在 %(p)s 的班次（%(e)s）。请另行安排。",
                     who=who, w=_when(shift), p=shift.point_name, e=shift.event_name)
        else:
            title = _("撤销请假：%(n)s", n=vol.name)
            body = _("%(who)s 撤销了请假，会参加 %(w)s 在 %(p)s 的班次（%(e)s）。",
                     who=who, w=_when(shift), p=shift.point_name, e=shift.event_name)
        office = _("平安办")
    # One message per shift and volunteer per LEAVE_MERGE_MINUTES window: flipping leave / undo
    # cannot flood the office. A later change in the same window rewrites that message (the
    # inbox shows where things stand, unread again) and its still-unsent deliveries, sends nothing new.
    window = int(now.timestamp() // (LEAVE_MERGE_MINUTES * 60))
    key = f"leave:{s.id}:{vol.id}:w{window}"
    existing = session.scalar(select(Message).where(Message.dedupe_key == key))
    if existing is None:
        post_message(session, kind="leave", title=title, body=body, recipients=recipients, dedupe_key=key,
                     audience=office, clock=clock, commit=False)
        return
    if (existing.title, existing.body) == (title, body):
        return
    existing.title, existing.body = title, body
    session.execute(update(MessageRecipient).where(MessageRecipient.message_id == existing.id)
                    .values(read_at=None))
    for item in session.scalars(select(OutboxItem).where(OutboxItem.message_id == existing.id,
                                                         OutboxItem.status == OUT_PENDING)):
        payload = json.loads(item.payload or "{}")
        if "text" in payload:
            payload["text"] = telegram_text(title, body)
            item.payload = json.dumps(payload, ensure_ascii=False)


@dataclass(frozen=True)
class LeaveRow:
    shift_id: int
    event_name: str
    point_name: str
    starts_at: datetime
    volunteer_id: int
    name: str
    team: str | None
    since: datetime


def leave_list(session: Session, *, clock: Clock = system_clock, limit: int = 100) -> list[LeaveRow]:
    """The board's missing list: who asked for leave from a shift that has not ended."""
    rows = session.execute(select(Shift.id, Event.name, PatrolPoint.name, Shift.starts_at, Volunteer.id, Volunteer.name,
                                  Volunteer.team, Assignment.updated_at)
                           .select_from(Assignment).join(Shift, Shift.id == Assignment.shift_id)
                           .join(Event, Event.id == Shift.event_id).join(PatrolPoint, PatrolPoint.id == Shift.point_id)
                           .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
                           .where(Assignment.status == ASSIGNMENT_DECLINED, Shift.ends_at > clock())
                           .order_by(Shift.starts_at, Volunteer.team, Volunteer.name).limit(limit)).all()
    return [LeaveRow(*r) for r in rows]
