"""Tonight at a glance: for every shift of the night, who was expected, who is there, who has left
and who is missing, so a coordinator on the street sees the gaps first and can phone or remind.

"Missing" means assigned (not declined), active, with no record on that shift once the shift's start
plus a grace period has passed: a volunteer two minutes late is not missing yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models.attendance import ATT_OPEN, REVIEW_FLAGGED, Attendance
from models.event import ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.messaging import OUT_FAILED, Message, OutboxItem
from models.point import PatrolPoint
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _, in_programme_language
from services.messaging import PUSHED, QueuedMessage, post_message
from services.outbox import Recipient
from services.review import AttendanceRow, on_patrol
from services.volunteers import on_roster

DEFAULT_GRACE_MINUTES = 15
NIGHT_ENDS = time(6, 0)  # a night shift's small hours still belong to "tonight"
MISSING_LIMIT = 50   # the board's global missing list: the first 50, the rest by point
POINT_LIMIT = 50     # point rows with a problem shown in full; the rest are counted
DASHBOARD_POINTS = 20


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
    reminded_web_only: bool = False   # the reminder reached no phone channel: only a call will


@dataclass
class PointRow:
    """One shift at one point: the unit a team leader is responsible for. The counts are always
    there; `missing` and `walk_ins` hold people only for the rows the page shows (a district's
    15,000 assigned would otherwise be loaded and drawn every 10 seconds)."""

    shift_id: int
    point_id: int
    point_code: str
    point_name: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    expected: int = 0
    present_count: int = 0
    done_count: int = 0
    missing_count: int = 0
    walk_in_count: int = 0
    missing: list[Person] = field(default_factory=list)
    walk_ins: list[Person] = field(default_factory=list)
    started: bool = False
    missing_from: datetime | None = None

    @property
    def problem(self) -> bool:
        """Someone missing or someone who came unplanned: the rows a coordinator must look at."""
        return bool(self.missing_count or self.walk_in_count)


@dataclass
class SlotGroup:
    """The points of one campaign sharing the same start and end (one "shift" to the office).

    `points` is every row; `shown` the rows with a problem the page draws (the worst first, up to
    the board's cap); `hidden_problems` the rows with a problem past the cap, `quiet` the rows with
    none, each only counted."""

    starts_at: datetime
    ends_at: datetime
    points: list[PointRow] = field(default_factory=list)
    shown: list[PointRow] = field(default_factory=list)
    hidden_problems: int = 0

    @property
    def missing(self) -> int:
        return sum(p.missing_count for p in self.points)

    @property
    def quiet(self) -> list[PointRow]:
        """Rows with nothing wrong that the page does not draw, only counts."""
        drawn = {p.shift_id for p in self.shown}
        return [p for p in self.points if not p.problem and p.shift_id not in drawn]

    @property
    def quiet_expected(self) -> int:
        return sum(p.expected for p in self.quiet)

    @property
    def quiet_present(self) -> int:
        return sum(p.present_count for p in self.quiet)


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
class PointRef:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class Board:
    now: datetime
    grace_minutes: int
    campaigns: list[CampaignGroup]
    totals: Totals
    missing_people: list[tuple[PointRow, Person]] = field(default_factory=list)
    point: PointRef | None = None          # the point the board is filtered on, if any
    points: list[PointRef] = field(default_factory=list)  # tonight's points, for the point picker

    @property
    def missing_more(self) -> int:
        """Missing people not in the list (see them point by point)."""
        return self.totals.missing - len(self.missing_people)

    @property
    def hidden_problems(self) -> int:
        return sum(s.hidden_problems for c in self.campaigns for s in c.slots)


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
            zone: ZoneInfo = SHANGHAI, point_id: int | None = None, missing_limit: int | None = MISSING_LIMIT,
            point_limit: int | None = POINT_LIMIT, fill: bool = False) -> Board:
    """The board: tonight's shifts grouped by campaign, time and point, missing people first.

    Summarised so that it stays small at district scale: every point row is counted with grouped
    queries, the missing list holds the first `missing_limit` people (None: all), and only the
    `point_limit` rows with the most missing are drawn in full (with `fill`, quiet rows take the
    places left). With `point_id` the board is that point's alone and lists all its missing people.
    """
    now = clock()
    start, end = night_window(now, zone)
    grace = timedelta(minutes=max(grace_minutes, 0))
    in_window = (((Shift.starts_at >= start) & (Shift.starts_at < end))
                 | ((Shift.starts_at <= now) & (Shift.ends_at > now)))
    shifts = session.execute(
        select(Shift.id, Shift.event_id, Shift.starts_at, Shift.ends_at, Shift.capacity, Event.name,
               PatrolPoint.id, PatrolPoint.code, PatrolPoint.name)
        .join(Event, Event.id == Shift.event_id).join(PatrolPoint, PatrolPoint.id == Shift.point_id)
        .where(in_window).order_by(Shift.starts_at, Event.name, PatrolPoint.code, Shift.id)).all()
    refs = sorted({PointRef(pid, pcode, pname) for *_x, pid, pcode, pname in shifts}, key=lambda p: (p.code, p.id))
    point = next((p for p in refs if p.id == point_id), None) if point_id else None
    if point_id and point is None:  # a point with no shift tonight: its name still heads the page
        found = session.get(PatrolPoint, point_id)
        point = PointRef(found.id, found.code, found.name) if found else None
    if point_id:
        shifts = [s for s in shifts if s[6] == point_id]
        missing_limit = point_limit = None
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
    missing_people: list[tuple[PointRow, Person]] = []
    if rows:
        today = local_date(now, zone)
        _count(session, rows, today)
        _choose_rows(campaigns.values(), point_limit, everything=bool(point_id), fill=fill)
        missing_people = _missing_people(session, rows, missing_limit, today)
        _walk_ins(session, rows)
    totals = Totals(len(rows), sum(r.expected for r in rows.values()), sum(r.present_count for r in rows.values()),
                    sum(r.done_count for r in rows.values()), sum(r.missing_count for r in rows.values()),
                    sum(r.walk_in_count for r in rows.values()))
    return Board(now, grace_minutes, list(campaigns.values()), totals, missing_people, point, refs)


def _assigned(shift_ids: list[int], today: date) -> tuple:
    """Assignments that count: not declined, the volunteer on the roster today (a withdrawal dated
    ahead still patrols tonight)."""
    return (Assignment.shift_id.in_(shift_ids), Assignment.status != ASSIGNMENT_DECLINED, on_roster(today))


def _no_record():
    return ~select(Attendance.id).where(Attendance.shift_id == Assignment.shift_id,
                                        Attendance.volunteer_id == Assignment.volunteer_id).exists()


def _count(session: Session, rows: dict[int, PointRow], today: date) -> None:
    """Every row's counts in three grouped queries, whatever the number of people."""
    ids = list(rows)
    per_shift = (select(Assignment.shift_id, func.count()).join(Volunteer, Volunteer.id == Assignment.volunteer_id)
                 .where(*_assigned(ids, today)).group_by(Assignment.shift_id))
    for sid, n in session.execute(per_shift).all():
        rows[sid].expected = n
    for sid, n in session.execute(per_shift.where(_no_record())).all():
        if rows[sid].started:
            rows[sid].missing_count = n
    for sid, walk_in, status, n in session.execute(
            select(Attendance.shift_id, Attendance.walk_in, Attendance.status, func.count())
            .where(Attendance.shift_id.in_(ids))
            .group_by(Attendance.shift_id, Attendance.walk_in, Attendance.status)).all():
        row = rows[sid]
        if walk_in:
            row.walk_in_count += n
        elif status == ATT_OPEN:
            row.present_count += n
        else:
            row.done_count += n


def _choose_rows(campaigns, limit: int | None, *, everything: bool = False, fill: bool = False) -> None:
    """The rows drawn in full: those with a problem, the most missing first, `limit` in all (one
    point's board draws all its rows); with `fill`, rows without a problem take the places left."""
    problems = sorted((p for c in campaigns for s in c.slots for p in s.points if p.problem or everything),
                      key=lambda p: (-p.missing_count, -p.walk_in_count, p.starts_at, p.point_code, p.shift_id))
    chosen = problems if limit is None else problems[:limit]
    if fill and (limit is None or len(chosen) < limit):
        quiet = sorted((p for c in campaigns for s in c.slots for p in s.points if not p.problem),
                       key=lambda p: (p.starts_at, p.point_code, p.shift_id))
        chosen += quiet if limit is None else quiet[:limit - len(chosen)]
    keep = {p.shift_id for p in chosen}
    for c in campaigns:
        for s in c.slots:
            s.shown = sorted((p for p in s.points if p.shift_id in keep),
                             key=lambda p: (-p.missing_count, -p.walk_in_count, p.point_code, p.shift_id))
            s.hidden_problems = sum(1 for p in s.points if p.problem and p.shift_id not in keep)


@dataclass(frozen=True)
class OnPatrol:
    """Who is checked in now: the first `limit` of everyone (or one point's, all of them) and how
    many in all."""

    rows: list[AttendanceRow]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


PATROL_LIMIT = 50


def on_patrol_list(session: Session, *, point_id: int | None = None, limit: int | None = PATROL_LIMIT) -> OnPatrol:
    """The board's on-patrol list: a district's 1,000 people each with a proxy check-out form made
    the page half a megabyte, so the whole list is capped and one point's is shown in full."""
    if point_id:
        rows = on_patrol(session, point_id=point_id)
        return OnPatrol(rows, len(rows))
    rows = on_patrol(session, limit=limit)
    total = len(rows) if limit is None or len(rows) < limit else \
        session.scalar(select(func.count(Attendance.id)).where(Attendance.status == ATT_OPEN)) or 0
    return OnPatrol(rows, total)


def _missing_people(session: Session, rows: dict[int, PointRow], limit: int | None,
                    today: date) -> list[tuple[PointRow, Person]]:
    """The missing, shift by shift (the order of the board), the first `limit` of them."""
    started = [sid for sid, r in rows.items() if r.started and r.missing_count]
    if not started or limit == 0:
        return []
    if limit is not None:  # only the first shifts (in board order) that hold the first `limit` people
        upto, seen = [], 0
        for sid in started:
            upto.append(sid)
            seen += rows[sid].missing_count
            if seen >= limit:
                break
        started = upto
    stmt = (select(Assignment.shift_id, Volunteer.id, Volunteer.name, Volunteer.phone, Volunteer.team,
                   Volunteer.vest_no)
            .join(Volunteer, Volunteer.id == Assignment.volunteer_id).join(Shift, Shift.id == Assignment.shift_id)
            .join(Event, Event.id == Shift.event_id).join(PatrolPoint, PatrolPoint.id == Shift.point_id)
            .where(*_assigned(started, today), _no_record())
            .order_by(Shift.starts_at, Event.name, PatrolPoint.code, Shift.id, Volunteer.team, Volunteer.name,
                      Volunteer.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    found = session.execute(stmt).all()
    keys = [remind_key(r[0], r[1]) for r in found]
    reminded = {key: (at, pushes) for key, at, pushes in session.execute(
        select(Message.dedupe_key, Message.created_at,
               func.count(case((OutboxItem.status.in_(PUSHED), OutboxItem.id))))
        .outerjoin(OutboxItem, OutboxItem.message_id == Message.id)
        .where(Message.dedupe_key.in_(keys)).group_by(Message.id, Message.dedupe_key, Message.created_at))} \
        if keys else {}
    people = []
    for sid, vid, name, phone, team, vest in found:
        at, pushes = reminded.get(remind_key(sid, vid), (None, 0))
        person = Person(vid, name, phone, team, vest, reminded_at=_utc(at), reminded_web_only=at is not None and not pushes)
        rows[sid].missing.append(person)
        people.append((rows[sid], person))
    return people


def _walk_ins(session: Session, rows: dict[int, PointRow]) -> None:
    """Walk-ins' names, for the rows that have any (they are few: people who came unplanned)."""
    ids = [sid for sid, r in rows.items() if r.walk_in_count]
    if not ids:
        return
    for sid, aid, c_in, c_out, vid, name, phone, team, vest in session.execute(
            select(Attendance.shift_id, Attendance.id, Attendance.check_in_at, Attendance.check_out_at, Volunteer.id,
                   Volunteer.name, Volunteer.phone, Volunteer.team, Volunteer.vest_no)
            .join(Volunteer, Volunteer.id == Attendance.volunteer_id)
            .where(Attendance.shift_id.in_(ids), Attendance.walk_in.is_(True))
            .order_by(Attendance.check_in_at, Attendance.id)).all():
        rows[sid].walk_ins.append(Person(vid, name, phone, team, vest, aid, _utc(c_in), _utc(c_out)))


def fingerprint(*parts: object) -> str:
    """A short hash of what a board fragment shows (the board without its clock, the on-patrol and
    leave lists, the locale): equal fingerprints draw the same fragment, so the 10-second refresh
    can answer 304 Not Modified instead of the fragment again."""
    import hashlib

    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Board):
            part = (part.grace_minutes, part.campaigns, part.totals, part.missing_people, part.point)
        digest.update(repr(part).encode())
    return digest.hexdigest()[:32]


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
    with in_programme_language():   # to the volunteer: in Chinese, whoever tapped 提醒
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
    """What the dashboard opens on: tonight's shifts, who is out, what needs a decision. Only the
    counts and the worst points: the people are on the board."""
    board = tonight(session, clock=clock, grace_minutes=grace_minutes, zone=zone, missing_limit=0,
                    point_limit=DASHBOARD_POINTS, fill=True)
    on_patrol = session.scalar(select(func.count(Attendance.id)).where(Attendance.status == ATT_OPEN)) or 0
    failed = session.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.status == OUT_FAILED)) or 0
    return Today(board, on_patrol, waiting_review_count(session), failed)
