"""Tonight at a glance: for every shift of the night, who was expected, who is there, who has left
and who is missing, so a coordinator on the street sees the gaps first and can phone or remind.

"Missing" means assigned (not declined), active, with no record on that shift once the shift's start
plus a grace period has passed: a volunteer two minutes late is not missing yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.attendance import ATT_OPEN, REVIEW_FLAGGED, Attendance
from models.event import ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.messaging import OUT_FAILED, Message, OutboxItem
from models.point import PatrolPoint
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _
from services.messaging import QueuedMessage, post_message
from services.outbox import Recipient
from services.volunteers import on_roster

DEFAULT_GRACE_MINUTES = 15
NIGHT_ENDS = time(6, 0)  # a night shift's small hours still belong to "tonight"


@dataclass(frozen=True)
class Person:
    volunteer_id: int
    name: str
    phone: str
    team: str | None
    vest_no: str | None
    attendance_id: int | None = None
    check_in_at: datetime | None = None
    check_out_at: datetime | None = None
    reminded_at: datetime | None = None


@dataclass
class PointRow:
    """One shift at one point: the unit a team leader is responsible for."""

    shift_id: int
    point_id: int
    point_code: str
    point_name: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    expected: int = 0
    missing: list[Person] = field(default_factory=list)
    present: list[Person] = field(default_factory=list)
    done: list[Person] = field(default_factory=list)
    walk_ins: list[Person] = field(default_factory=list)
    started: bool = False
    missing_from: datetime | None = None

    @property
    def present_count(self) -> int:
        return len(self.present)

    @property
    def done_count(self) -> int:
        return len(self.done)


@dataclass
class SlotGroup:
    """The points of one campaign sharing the same start and end (one "shift" to the office)."""

    starts_at: datetime
    ends_at: datetime
    points: list[PointRow] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(len(p.missing) for p in self.points)


@dataclass
class CampaignGroup:
    event_id: int
    name: str
    slots: list[SlotGroup] = field(default_factory=list)


@dataclass(frozen=True)
class Totals:
    shifts: int
    expected: int
    present: int
    done: int
    missing: int
    walk_ins: int


@dataclass(frozen=True)
class Board:
    now: datetime
    grace_minutes: int
    campaigns: list[CampaignGroup]
    totals: Totals

    @property
    def missing_people(self) -> list[tuple[PointRow, Person]]:
        """Everyone missing tonight, shift by shift: the list a coordinator works down first."""
        return [(p, m) for c in self.campaigns for s in c.slots for p in s.points for m in p.missing]


def night_window(now: datetime, zone: ZoneInfo = SHANGHAI) -> tuple[datetime, datetime]:
    """From local midnight of the day being worked to 06:00 the next morning; before 06:00 the
    night that started yesterday evening is still "tonight"."""
    local = now.astimezone(zone)
    day = local.date() - timedelta(days=1) if local.time() < NIGHT_ENDS else local.date()
    start = datetime.combine(day, time(), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), NIGHT_ENDS, tzinfo=zone)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    from datetime import timezone
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def remind_key(shift_id: int, volunteer_id: int) -> str:
    return f"board-remind:{shift_id}:{volunteer_id}"


def tonight(session: Session, *, clock: Clock = system_clock, grace_minutes: int = DEFAULT_GRACE_MINUTES,
            zone: ZoneInfo = SHANGHAI) -> Board:
    """The board: tonight's shifts grouped by campaign, time and point, missing people first."""
    now = clock()
    start, end = night_window(now, zone)
    grace = timedelta(minutes=max(grace_minutes, 0))
    shifts = session.execute(
        select(Shift.id, Shift.event_id, Shift.starts_at, Shift.ends_at, Shift.capacity, Event.name,
               PatrolPoint.id, PatrolPoint.code, PatrolPoint.name)
        .join(Event, Event.id == Shift.event_id).join(PatrolPoint, PatrolPoint.id == Shift.point_id)
        .where(((Shift.starts_at >= start) & (Shift.starts_at < end))
               | ((Shift.starts_at <= now) & (Shift.ends_at > now)))
        .order_by(Shift.starts_at, Event.name, PatrolPoint.code, Shift.id)).all()
    rows: dict[int, PointRow] = {}
    campaigns: dict[int, CampaignGroup] = {}
    for sid, eid, s_at, e_at, cap, ename, pid, pcode, pname in shifts:
        s_at, e_at = _utc(s_at), _utc(e_at)
        row = PointRow(sid, pid, pcode, pname, s_at, e_at, cap, started=now >= s_at + grace,
                       missing_from=s_at + grace)
        rows[sid] = row
        group = campaigns.setdefault(eid, CampaignGroup(eid, ename))
        slot = next((s for s in group.slots if s.starts_at == s_at and s.ends_at == e_at), None)
        if slot is None:
            slot = SlotGroup(s_at, e_at)
            group.slots.append(slot)
        slot.points.append(row)
    if rows:
        _fill(session, rows, local_date(now, zone))
    totals = Totals(len(rows), sum(r.expected for r in rows.values()), sum(r.present_count for r in rows.values()),
                    sum(r.done_count for r in rows.values()), sum(len(r.missing) for r in rows.values()),
                    sum(len(r.walk_ins) for r in rows.values()))
    return Board(now, grace_minutes, list(campaigns.values()), totals)


def _fill(session: Session, rows: dict[int, PointRow], today: date) -> None:
    """Assigned people on the roster today (a withdrawal dated ahead still patrols tonight), then records."""
    ids = list(rows)
    assigned = session.execute(
        select(Assignment.shift_id, Volunteer.id, Volunteer.name, Volunteer.phone, Volunteer.team, Volunteer.vest_no)
        .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
        .where(Assignment.shift_id.in_(ids), Assignment.status != ASSIGNMENT_DECLINED,
               on_roster(today))
        .order_by(Volunteer.team, Volunteer.name, Volunteer.id)).all()
    records = session.execute(
        select(Attendance.shift_id, Attendance.id, Attendance.status, Attendance.check_in_at, Attendance.check_out_at,
               Attendance.walk_in, Volunteer.id, Volunteer.name, Volunteer.phone, Volunteer.team, Volunteer.vest_no)
        .join(Volunteer, Volunteer.id == Attendance.volunteer_id)
        .where(Attendance.shift_id.in_(ids)).order_by(Attendance.check_in_at, Attendance.id)).all()
    reminded = dict(session.execute(select(Message.dedupe_key, Message.created_at)
                                    .where(Message.dedupe_key.in_([remind_key(a[0], a[1]) for a in assigned]))).all()) \
        if assigned else {}
    seen: set[tuple[int, int]] = set()
    for sid, aid, status, c_in, c_out, walk_in, vid, name, phone, team, vest in records:
        person = Person(vid, name, phone, team, vest, aid, _utc(c_in), _utc(c_out))
        row = rows[sid]
        seen.add((sid, vid))
        if walk_in:
            row.walk_ins.append(person)
        elif status == ATT_OPEN:
            row.present.append(person)
        else:
            row.done.append(person)
    for sid, vid, name, phone, team, vest in assigned:
        row = rows[sid]
        row.expected += 1
        if (sid, vid) not in seen and row.started:
            row.missing.append(Person(vid, name, phone, team, vest,
                                      reminded_at=_utc(reminded.get(remind_key(sid, vid)))))


def remind(session: Session, shift_id: int, volunteer_id: int, *, by_user_id: int | None,
           clock: Clock = system_clock, zone: ZoneInfo = SHANGHAI) -> QueuedMessage:
    """Send one missing volunteer a nudge (web inbox and every linked channel).

    Once per person and shift: the dedupe key makes a double tap, or two coordinators tapping at
    once, send a single message.
    """
    shift = session.get(Shift, shift_id)
    if shift is None:
        raise DomainError("not_found", _("班次不存在"))
    assigned = session.scalar(select(func.count(Assignment.id)).where(
        Assignment.shift_id == shift_id, Assignment.volunteer_id == volunteer_id,
        Assignment.status != ASSIGNMENT_DECLINED))
    if not assigned:
        raise DomainError("not_assigned", _("该志愿者不在这个班次的名单中"))
    point = session.get(PatrolPoint, shift.point_id)
    starts = _utc(shift.starts_at).astimezone(zone)
    body = _("您今晚 %(t)s 在“%(p)s”有巡逻班次，还没有签到。到岗后请扫点位二维码签到；来不了请回复或联系平安办。",
             t=starts.strftime("%H:%M"), p=point.name if point else "")
    return post_message(session, kind="reminder", title=_("到岗提醒"), body=body,
                        recipients=[Recipient(volunteer_id=volunteer_id)],
                        dedupe_key=remind_key(shift_id, volunteer_id), audience=_("缺岗提醒"),
                        created_by_user_id=by_user_id, clock=clock)


@dataclass(frozen=True)
class Today:
    board: Board
    on_patrol: int
    waiting_review: int
    failed_messages: int


def waiting_review_count(session: Session) -> int:
    """Records a coordinator still has to decide (the count in the menu)."""
    return session.scalar(select(func.count(Attendance.id)).where(Attendance.review_status == REVIEW_FLAGGED)) or 0


def today(session: Session, *, clock: Clock = system_clock, grace_minutes: int = DEFAULT_GRACE_MINUTES,
          zone: ZoneInfo = SHANGHAI) -> Today:
    """What the dashboard opens on: tonight's shifts, who is out, what needs a decision."""
    board = tonight(session, clock=clock, grace_minutes=grace_minutes, zone=zone)
    on_patrol = session.scalar(select(func.count(Attendance.id)).where(Attendance.status == ATT_OPEN)) or 0
    failed = session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.status == OUT_FAILED)) or 0
    return Today(board, on_patrol, waiting_review_count(session), failed)
