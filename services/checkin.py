"""Checking in and out by scanning a patrol point's QR code: the heart of the product.

`scan()` is one plain function used by the phone page, the JSON API and the bot. Its rules (all
configurable, see `ScanRules`):

- a scan is accepted only in a shift window at that point (30 min before start to 30 min after
  end); where windows of two shifts overlap, the scan belongs to the shift whose start–end contains
  it, else to the one starting nearest (a shift the volunteer is assigned to comes first);
- the first scan opens an attendance, the next one (same point, or another point of the same
  campaign) closes it; at most one open attendance per volunteer (a partial unique index, and the
  volunteer's row is locked first so concurrent scans queue instead of colliding);
- a repeated nonce returns the first answer unchanged; a second scan within the debounce is a
  `duplicate` and changes nothing;
- credit is the overlap of presence with the shift's start–end, in whole minutes, at most 12 h per
  volunteer per Shanghai calendar day (written by `services/credits.py`);
- unassigned volunteers may walk in while walk-ins (people, not records; rejected ones aside) are
  below capacity minus assignments; assigned volunteers are never refused as `shift_full`;
- a volunteer may scan until the day their withdrawal takes effect;
- geofence (`flag` / `enforce` / `off`), a phone (its browser id) used by two volunteers on one day,
  and travel faster than 30 km/h between points put the attendance up for review;
- a scan the phone kept offline comes with the phone's time (`client_time`): more than
  `offline_late_after` late, it counts at the phone's time and is flagged `offline_late`, but
  only within `offline_max_delay` (2 h) and never before the volunteer's last accepted scan; an
  older one is refused (`offline_too_old`) and listed for the coordinators. A late check-out
  whose attendance the auto-close job already closed replaces that close time, flagged.

Every attempt, accepted or refused, is recorded in `scan_records` with its code. The clock is read
only once the locks are held, so a check-out can never be stamped before its check-in.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models.attendance import (ATT_AUTO_CLOSED, ATT_CLOSED, ATT_OPEN, REVIEW_APPROVED, REVIEW_FLAGGED, REVIEW_NONE, REVIEW_REJECTED,
                               SOURCE_PROXY, SOURCE_SCAN, Attendance, ScanRecord)
from models.event import ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.point import PatrolPoint
from models.programme import InsuranceCover, InsurancePolicy
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, system_clock
from services.coords import distance_m
from services.credits import FLAG_DAILY_CAP, credit_days, recompute_days  # noqa: F401 (FLAG_DAILY_CAP re-exported)
from services.errors import DomainError
from services.hours import floor_hours, year_total_minutes
from services.programme_year import STORED_START, parse_year_start
from services.i18n import _
from services.tokens import POSTER, CodeSigner, hash_secret
from services.transactions import lock_volunteer, write_transaction
from services.volunteers import withdrawal_in_effect

log = logging.getLogger(__name__)

A = Attendance.__table__
S = ScanRecord.__table__
SH = Shift.__table__
P = PatrolPoint.__table__
AS = Assignment.__table__
V = Volunteer.__table__
EV = Event.__table__

ACCEPTED = ("check_in", "check_out")
GEOFENCE_MODES = ("flag", "enforce", "off")

FLAG_OUTSIDE = "outside_geofence"
FLAG_NO_LOCATION = "no_location"
FLAG_SHARED_DEVICE = "shared_device"
FLAG_FAST_TRAVEL = "fast_travel"
FLAG_AUTO_CLOSED = "auto_closed"
FLAG_UNINSURED = "uninsured"
FLAG_WITHDRAWN = "withdrawn"
FLAG_OFFLINE_LATE = "offline_late"
# Checked in or out on someone's behalf by a team leader: a coordinator looks at it before it counts
# as settled (a leader's account reaches every team's volunteers on the board).
FLAG_PROXY_LEADER = "proxy_by_leader"
# Refusal codes of scans that came late from a phone's offline queue (the coordinators' list).
OFFLINE_REFUSALS = ("offline_too_old", "offline_superseded")
INSURANCE_GATES = ("flag", "enforce", "off")


@dataclass(frozen=True)
class ScanRules:
    window_before: timedelta = timedelta(minutes=30)
    window_after: timedelta = timedelta(minutes=30)
    debounce: timedelta = timedelta(seconds=60)
    daily_cap_minutes: int = 12 * 60
    geofence_mode: str = "flag"
    max_speed_kmh: float = 30.0
    insurance_gate: str = "flag"
    checkout_confirm: timedelta = timedelta(minutes=30)
    # A scan kept on the phone while offline counts at the phone's time only this long afterwards;
    # one that arrives within `offline_late_after` simply counts at the server's time.
    offline_max_delay: timedelta = timedelta(hours=2)
    offline_late_after: timedelta = timedelta(minutes=2)
    # A phone's reported accuracy widens the fence, but never by more than this.
    max_accuracy_allowance_m: float = 100.0
    zone: ZoneInfo = SHANGHAI

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ScanRules":
        mode = str(config.get("GEOFENCE_MODE", "flag")).lower()
        if mode not in GEOFENCE_MODES:
            raise ValueError(f"GEOFENCE_MODE must be one of {GEOFENCE_MODES}")
        return cls(window_before=timedelta(minutes=int(config.get("SCAN_WINDOW_BEFORE_MINUTES", 30))),
                   window_after=timedelta(minutes=int(config.get("SCAN_WINDOW_AFTER_MINUTES", 30))),
                   debounce=timedelta(seconds=int(config.get("SCAN_DEBOUNCE_SECONDS", 60))),
                   daily_cap_minutes=int(float(config.get("DAILY_CAP_HOURS", 12)) * 60),
                   geofence_mode=mode, max_speed_kmh=float(config.get("TRAVEL_MAX_KMH", 30)),
                   insurance_gate=_gate(config.get("INSURANCE_GATE", "flag")),
                   checkout_confirm=timedelta(minutes=int(config.get("CHECKOUT_CONFIRM_MINUTES", 30))),
                   offline_max_delay=parse_duration(config.get("OFFLINE_SCAN_MAX_DELAY", "2h")),
                   zone=ZoneInfo(config.get("TIMEZONE", "Asia/Shanghai")))


def parse_duration(value: Any) -> timedelta:
    """`OFFLINE_SCAN_MAX_DELAY` as people write it: "120" (minutes), "90m", "2h"."""
    text = str(value).strip().lower().replace(" ", "")
    try:
        if text.endswith("h"):
            return timedelta(hours=float(text[:-1]))
        if text.endswith("min"):
            text = text[:-3]
        elif text.endswith("m"):
            text = text[:-1]
        minutes = float(text)
    except ValueError:
        raise ValueError(f"not a duration (minutes, or like 2h / 90m): {value!r}") from None
    if minutes < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return timedelta(minutes=minutes)


def _gate(value: str) -> str:
    value = str(value).lower()
    if value not in INSURANCE_GATES:
        raise ValueError(f"INSURANCE_GATE must be one of {INSURANCE_GATES}")
    return value


@dataclass(frozen=True)
class AttendanceView:
    id: int
    status: str
    source: str
    point_code: str | None
    point_name: str | None
    shift_id: int | None
    check_in_at: datetime
    check_out_at: datetime | None
    credited_minutes: int
    walk_in: bool
    flags: tuple[str, ...] = ()

    @property
    def credited_hours(self) -> float:
        return floor_hours(self.credited_minutes)


_NOT_REPLAYED = frozenset({"replayed", "shift_ends_at", "elapsed_minutes"})


@dataclass(frozen=True)
class ScanResult:
    action: str                      # check_in | check_out | duplicate | confirm_checkout
    attendance: AttendanceView | None
    scanned_at: datetime
    point_code: str
    point_name: str
    year_minutes: int | None = None  # credited minutes this programme year, after a check-out
    flags: tuple[str, ...] = field(default_factory=tuple)
    replayed: bool = False
    shift_ends_at: datetime | None = None  # with confirm_checkout: when the shift ends
    elapsed_minutes: int | None = None     # with confirm_checkout: minutes since the check-in

    @property
    def year_hours(self) -> float | None:
        return floor_hours(self.year_minutes) if self.year_minutes is not None else None

    def to_json(self) -> str:
        """The answer kept for a replayed nonce. Built field by field: `asdict` deep-copies every
        value and was 4 % of a scan's time."""
        def enc(o):
            return o.isoformat() if isinstance(o, datetime) else o
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_REPLAYED}
        if self.attendance is not None:
            data["attendance"] = {f.name: getattr(self.attendance, f.name) for f in fields(self.attendance)}
        return json.dumps(data, default=enc)

    @classmethod
    def from_json(cls, raw: str) -> "ScanResult":
        data = json.loads(raw)
        att = data.get("attendance")
        if att:
            for key in ("check_in_at", "check_out_at"):
                att[key] = datetime.fromisoformat(att[key]) if att.get(key) else None
            att["flags"] = tuple(att.get("flags") or ())
            data["attendance"] = AttendanceView(**att)
        data["scanned_at"] = datetime.fromisoformat(data["scanned_at"])
        data["flags"] = tuple(data.get("flags") or ())
        return cls(**data, replayed=True)


def _dt(value: datetime | None) -> datetime | None:
    """Scalar subqueries bypass the column type on SQLite and come back naive; they are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# The scan's statements are built once: constructing a Select costs more than running it on a
# small indexed table, and a key-date burst runs them hundreds of times a second.
# `action IN (...)` with a tuple is an "expanding" parameter that SQLAlchemy re-renders on every
# execution; two equalities compile once.
_ACCEPTED_ACTION = or_(S.c.action == ACCEPTED[0], S.c.action == ACCEPTED[1])
_last_scan = (select(S.c.scanned_at, S.c.point_id).where(S.c.volunteer_id == V.c.id, _ACCEPTED_ACTION)
              .order_by(S.c.scanned_at.desc()).limit(1))
_IC, _IP = InsuranceCover.__table__, InsurancePolicy.__table__
_day_cover = and_(_IP.c.cover_start <= bindparam("day"), _IP.c.cover_end >= bindparam("day"))
_COVERED = (select(_IC.c.id).select_from(_IC.join(_IP, _IP.c.id == _IC.c.policy_id))
            .where(_IC.c.volunteer_id == bindparam("vid"), _day_cover).limit(1).scalar_subquery())
_ANY_POLICY = select(_IP.c.id).limit(1).scalar_subquery()
_INSURANCE = select(_COVERED.label("covered"), _ANY_POLICY.label("any_policy"))
_SHARED_DEVICE = (select(S.c.id).where(or_(S.c.device_id == bindparam("did"), S.c.browser_hash == bindparam("bh")),
                                        S.c.volunteer_id != bindparam("vid"),
                                        _ACCEPTED_ACTION, S.c.scanned_at >= bindparam("since")).limit(1))
_STATE = (select(V.c.id, V.c.status, V.c.name, V.c.withdrawn_on,
                 P.c.id.label("p_id"), P.c.code.label("p_code"), P.c.name.label("p_name"), P.c.lat.label("p_lat"),
                 P.c.lon.label("p_lon"), P.c.radius_m.label("p_radius_m"), P.c.active.label("p_active"),
                 P.c.key_version.label("p_key_version"),
                 A.c.id.label("att_id"), A.c.volunteer_id, A.c.event_id, A.c.shift_id, A.c.point_id.label("att_point_id"),
                 A.c.check_in_at, A.c.flags, A.c.review_status, A.c.walk_in, SH.c.starts_at, SH.c.ends_at,
                 select(S.c.response_json).where(S.c.volunteer_id == V.c.id, S.c.nonce == bindparam("nonce"))
                 .scalar_subquery().label("replay"),
                 _last_scan.with_only_columns(S.c.scanned_at).scalar_subquery().label("last_at"),
                 _last_scan.with_only_columns(S.c.point_id).scalar_subquery().label("last_point_id"),
                 # Asked by every scan, read here rather than by statements of their own: the
                 # checks of `_decide` for the day given as `since`/`day` (the caller's guess of
                 # the scan's local day, checked once the time is known), and the year's start.
                 _SHARED_DEVICE.scalar_subquery().label("shared_device"),
                 _COVERED.label("covered"), _ANY_POLICY.label("any_policy"),
                 STORED_START.scalar_subquery().label("year_start"))
          .select_from(V.outerjoin(P, P.c.id == bindparam("pid"))
                       .outerjoin(A, and_(A.c.volunteer_id == V.c.id, A.c.status == ATT_OPEN))
                       .outerjoin(SH, SH.c.id == A.c.shift_id))
          .where(V.c.id == bindparam("vid")))
# On PostgreSQL the volunteer's row is locked by a statement of its own, before the state is read:
# in READ COMMITTED a statement that waited for a lock re-checks only the locked row, and would read
# the joined attendance and last scan from the snapshot taken before the wait.
_LOCK = select(V.c.id).where(V.c.id == bindparam("vid")).with_for_update()
_SHIFTS = (select(SH.c.id, SH.c.event_id, SH.c.starts_at, SH.c.ends_at, SH.c.capacity,
                  select(AS.c.status).where(AS.c.shift_id == SH.c.id, AS.c.volunteer_id == bindparam("vid"))
                  .scalar_subquery().label("my_status"),
                  select(func.count()).select_from(AS).where(AS.c.shift_id == SH.c.id,
                                                             AS.c.status != ASSIGNMENT_DECLINED)
                  .scalar_subquery().label("assigned"),
                  # Walk-in places are held by people, not records: back from dinner is still one
                  # walk-in, and a rejected record holds no place.
                  select(func.count(A.c.volunteer_id.distinct())).select_from(A)
                  .where(A.c.shift_id == SH.c.id, A.c.walk_in.is_(True), A.c.review_status != REVIEW_REJECTED)
                  .scalar_subquery().label("walk_ins"),
                  select(A.c.id).where(A.c.shift_id == SH.c.id, A.c.walk_in.is_(True),
                                       A.c.review_status != REVIEW_REJECTED, A.c.volunteer_id == bindparam("vid"))
                  .limit(1).scalar_subquery().label("my_walk_in"))
           .where(SH.c.point_id == bindparam("pid"), SH.c.starts_at <= bindparam("latest_start"),
                  SH.c.ends_at >= bindparam("earliest_end")))
_POINT_COORDS = select(P.c.lat, P.c.lon, P.c.name).where(P.c.id == bindparam("pid"))
_SAME_EVENT = select(SH.c.id).where(SH.c.event_id == bindparam("eid"), SH.c.point_id == bindparam("pid")).limit(1)
_LAST_ATTENDANCE = (select(A.c.id).where(A.c.volunteer_id == bindparam("vid")).order_by(A.c.id.desc()).limit(1))
_INSERT_SCAN = insert(S)
_INSERT_ATTENDANCE = insert(A).returning(A.c.id)
_CLOSE = (update(A).where(A.c.id == bindparam("b_id"), A.c.status == ATT_OPEN)
          .values(status=bindparam("b_status"), check_out_at=bindparam("b_out"),
                  checkout_point_id=bindparam("b_point"), credited_minutes=bindparam("b_minutes"),
                  flags=bindparam("b_flags"), review_status=bindparam("b_review")))


def _record(conn: Connection, *, volunteer_id: int | None, now: datetime, action: str, code: str,
            point_id: int | None = None, shift_id: int | None = None, attendance_id: int | None = None,
            nonce: str | None = None, channel: str = "web", lat: float | None = None, lon: float | None = None,
            accuracy: float | None = None, distance: float | None = None, device_id: int | None = None,
            response: str | None = None, received_at: datetime | None = None,
            client_time: datetime | None = None, browser_hash: str | None = None) -> None:
    conn.execute(_INSERT_SCAN, {"volunteer_id": volunteer_id, "point_id": point_id, "shift_id": shift_id,
                                "attendance_id": attendance_id, "scanned_at": now, "channel": channel, "nonce": nonce,
                                "received_at": received_at or now, "client_time": client_time,
                                "action": action, "code": code, "lat": lat, "lon": lon, "accuracy_m": accuracy,
                                "distance_m": distance, "device_id": device_id, "response_json": response,
                                "browser_hash": browser_hash})


def _refusal_json(exc: DomainError) -> str:
    return json.dumps({"error": {"code": exc.code, "message": exc.message}}, ensure_ascii=False)


@dataclass(frozen=True)
class _Point:
    id: int
    code: str
    name: str
    lat: float | None
    lon: float | None
    radius_m: int
    active: bool
    key_version: int


def _signed_point_id(signer: CodeSigner, token: str) -> tuple[int | None, int | None]:
    try:
        signed = signer.verify(POSTER, token)
    except DomainError:
        return None, None
    return signed.object_id, signed.version


def _point_from_state(state, version: int | None) -> _Point:
    """The point of the scanned token, read by the state query; refusals as `resolve_point_token`."""
    if version is None or state.p_id is None:
        raise DomainError("bad_token", _("二维码无效：不是平安马甲签发的二维码"))
    point = _Point(state.p_id, state.p_code, state.p_name, state.p_lat, state.p_lon, state.p_radius_m,
                   state.p_active, state.p_key_version)
    _check_point(point, version)
    return point


def _check_point(point, version: int) -> None:
    if version != point.key_version:
        raise DomainError("point_revoked", _("此二维码已作废（点位“%(name)s”已更换新海报），请扫描现场最新张贴的二维码",
                                             name=point.name))
    if not point.active:
        raise DomainError("point_inactive", _("点位“%(name)s”已停用", name=point.name))


def _attendance_view(conn: Connection, attendance_id: int) -> AttendanceView:
    row = conn.execute(select(A.c.id, A.c.status, A.c.source, P.c.code, P.c.name, A.c.shift_id, A.c.check_in_at,
                              A.c.check_out_at, A.c.credited_minutes, A.c.walk_in, A.c.flags)
                       .select_from(A.outerjoin(P, P.c.id == A.c.point_id)).where(A.c.id == attendance_id)).one()
    return AttendanceView(row.id, row.status, row.source, row.code, row.name, row.shift_id, _dt(row.check_in_at),
                          _dt(row.check_out_at), row.credited_minutes, row.walk_in,
                          tuple(f for f in (row.flags or "").split(",") if f))


def _geofence_flags(point, lat, lon, accuracy, rules: ScanRules) -> tuple[list[str], float | None]:
    if rules.geofence_mode == "off" or point.lat is None or point.lon is None or not point.radius_m:
        return [], None
    if lat is None or lon is None:
        if rules.geofence_mode == "enforce":
            raise DomainError("no_location", _("此点位需要手机定位才能签到：请允许浏览器获取位置后重试"))
        return [FLAG_NO_LOCATION], None
    distance = distance_m(lat, lon, point.lat, point.lon)
    allowance = min(max(accuracy or 0.0, 0.0), rules.max_accuracy_allowance_m)
    if distance - allowance > point.radius_m:
        if rules.geofence_mode == "enforce":
            raise DomainError("outside_geofence", _("您距离点位“%(name)s”约 %(d)d 米，超出签到范围（%(r)d 米）",
                                                    name=point.name, d=int(distance), r=point.radius_m))
        return [FLAG_OUTSIDE], distance
    return [], distance


def _flags_str(*groups) -> str:
    seen: list[str] = []
    for group in groups:
        for f in (group.split(",") if isinstance(group, str) else group):
            if f and f not in seen:
                seen.append(f)
    return ",".join(seen)


def _close(conn: Connection, att, *, at: datetime, status: str, checkout_point_id: int | None,
           extra_flags: list[str], rules: ScanRules, shift_start, shift_end) -> tuple[int, str]:
    """Close an open attendance, then recompute its days' credit (check-out, auto-close, proxy).

    `att` needs id, volunteer_id, check_in_at, flags and review_status. Returns the credited
    minutes and the flags.
    """
    flags = _flags_str(att.flags or "", extra_flags)
    # A record may be decided while still open; a new reason to doubt it at check-out reopens the
    # review, while a check-out adding nothing keeps the decision already taken.
    before = set(f for f in (att.flags or "").split(",") if f)
    added = any(f not in before for f in extra_flags)
    reopen = added or (flags and att.review_status not in (REVIEW_APPROVED, REVIEW_REJECTED))
    conn.execute(_CLOSE, {"b_id": att.id, "b_status": status, "b_out": at, "b_point": checkout_point_id,
                          "b_minutes": 0, "b_flags": flags,
                          "b_review": REVIEW_FLAGGED if reopen else att.review_status})
    days = credit_days(att.check_in_at, at, shift_start, shift_end, rules.zone)
    credited = recompute_days(conn, att.volunteer_id, days, cap_minutes=rules.daily_cap_minutes, zone=rules.zone)
    return credited.get(att.id, (0, flags))


def auto_close_time(check_in_at: datetime, shift_end: datetime, withdrawn_on: date | None,
                    zone: ZoneInfo = SHANGHAI) -> tuple[datetime, list[str]]:
    """When a forgotten check-out is closed, and the flags that says why.

    At the shift end; never before the check-in (a check-in in the after-window credits nothing);
    and never after the volunteer's withdrawal took effect (the start of the withdrawal date).
    """
    at, flags = _dt(shift_end), [FLAG_AUTO_CLOSED]
    if withdrawn_on is not None:
        leaving = datetime.combine(withdrawn_on, datetime.min.time(), tzinfo=zone)
        if leaving < at:
            at, flags = leaving, [FLAG_AUTO_CLOSED, FLAG_WITHDRAWN]
    return max(at, _dt(check_in_at)), flags


def _open_attendance(conn: Connection, volunteer_id: int):
    return conn.execute(select(A.c.id, A.c.volunteer_id, A.c.event_id, A.c.shift_id, A.c.point_id, A.c.check_in_at,
                               A.c.flags, A.c.review_status, SH.c.starts_at, SH.c.ends_at)
                        .select_from(A.outerjoin(SH, SH.c.id == A.c.shift_id))
                        .where(A.c.volunteer_id == volunteer_id, A.c.status == ATT_OPEN)).first()


def choose_shift(conn: Connection, point_id: int, now: datetime, rules: ScanRules, volunteer_id: int | None = None):
    """The shift a scan at `point_id` at `now` belongs to, or None.

    Windows run from `window_before` the start to `window_after` the end; where several windows
    hold `now`, a shift the volunteer is assigned to (and did not decline) wins: back-to-back shifts
    at one point must not file an early arrival for the second under the first, as a walk-in who
    may even be refused as `shift_full`. Then the shift whose start–end contains it, else the one
    starting nearest. The row also says whether the volunteer is assigned, how many are, and how
    many walked in.
    """
    rows = conn.execute(_SHIFTS, {"pid": point_id, "vid": volunteer_id, "latest_start": now + rules.window_before,
                                  "earliest_end": now - rules.window_after}).all()
    if not rows:
        return None
    mine = [r for r in rows if r.my_status is not None and r.my_status != ASSIGNMENT_DECLINED]
    candidates = mine or rows
    containing = [r for r in candidates if _dt(r.starts_at) <= now <= _dt(r.ends_at)]
    return min(containing or candidates, key=lambda r: (abs((_dt(r.starts_at) - now).total_seconds()), r.id))


MAX_ACCURACY_M = 10_000


def check_location(lat: float | None, lon: float | None,
                   accuracy: float | None) -> tuple[float | None, float | None, float | None]:
    """A location a phone can report: −90..90, −180..180 (`bad_location`, a 422), as (lat, lon, accuracy).

    A fix whose accuracy is a finite number outside 0..10 km (a coarse, approximate location, or a
    negative one) says nothing about where the phone is: it is treated as no location (flagged
    `no_location` under the geofence mode), never refused, so a phone without precise location can
    still check in. Text, NaN and infinity stay refusals: no phone sends those.
    """
    def number(value) -> bool:
        return isinstance(value, (int, float)) and value == value and value not in (float("inf"), float("-inf"))

    def bad(value, low, high) -> bool:
        return value is not None and (not number(value) or not low <= value <= high)
    if bad(lat, -90, 90) or bad(lon, -180, 180) or (accuracy is not None and not number(accuracy)) \
            or (lat is None) != (lon is None):
        raise DomainError("bad_location", _("位置数据无效：纬度应在 −90 到 90 之间，经度在 −180 到 180 之间，"
                                            "精度在 0 到 10000 米之间"))
    if accuracy is not None and not 0 <= accuracy <= MAX_ACCURACY_M:
        return None, None, None
    return lat, lon, accuracy


class AnonymousScans:
    """Counts refused scans from phones that are not signed in, logging at most once a minute.

    A counter instead of a row: those scans change nothing, and an address hammering the public
    poster URL must not be able to grow the database or take its write lock.
    """

    def __init__(self, interval: timedelta = timedelta(minutes=1)) -> None:
        self.total = 0
        self._unlogged = 0
        self._interval = interval
        self._last_log: datetime | None = None

    def note(self, now: datetime) -> None:
        self.total += 1
        self._unlogged += 1
        if self._last_log is None or now - self._last_log >= self._interval:
            log.info("refused %d scan(s) from phones that are not signed in (%d since start)",
                     self._unlogged, self.total)
            self._unlogged = 0
            self._last_log = now


ANONYMOUS_SCANS = AnonymousScans()


def scan(session: Session, volunteer_id: int | None, token: str, *, signer: CodeSigner,
         rules: ScanRules = ScanRules(), clock: Clock = system_clock, nonce: str | None = None,
         lat: float | None = None, lon: float | None = None, accuracy: float | None = None,
         device_id: int | None = None, channel: str = "web", ask_before_ending: bool = False,
         client_time: datetime | None = None, browser_id: str | None = None) -> ScanResult:
    """Check the volunteer in or out at the point named by `token`; see the module docstring.

    With `ask_before_ending` (the phone page and the API, unless the person already confirmed), a
    scan that would end a patrol early — within `checkout_confirm` of the check-in, or before the
    shift's end — changes nothing and answers `confirm_checkout`: a tap the volunteer did not mean
    must not cost them the rest of their shift. Its nonce is not used up, so the confirmed scan may
    send the same one.

    `client_time` is the phone's time of a scan it kept while offline (see the module docstring).
    The phone's clock is trusted only within `offline_max_delay`, and such a scan is flagged, because
    a phone's clock can be set by hand.
    A scan from a phone that is not signed in is refused before anything is written (the poster
    token is public: anyone could otherwise fill `scan_records` and hold SQLite's write lock);
    it is only counted, in `ANONYMOUS_SCANS`.

    `browser_id` is the browser's long-lived random id (a cookie that survives signing in and out);
    only its hash is stored, and a browser that scanned for another volunteer that day is flagged
    `shared_device` (a device row is one sign-in, so `device_id` alone never repeats across people).
    """
    if not volunteer_id:
        ANONYMOUS_SCANS.note(clock())
        raise DomainError("not_signed_in", _("这部手机还没有登录：请先用平安办发给您的登录链接或志愿者卡登录"))
    lat, lon, accuracy = check_location(lat, lon, accuracy)
    nonce = (nonce or "").strip()[:64] or None
    browser_hash = hash_secret(browser_id) if browser_id else None
    refusal: DomainError | None = None
    result: ScanResult | None = None
    point_id, version = _signed_point_id(signer, token)  # no database needed to reject a forged code
    # The scan's local day, before the lock is held: the state query answers the day's checks for
    # it, and `_decide` asks again in the rare case the time read under the lock is another day.
    try:
        day = (client_time if client_time is not None and client_time.tzinfo else clock()).astimezone(rules.zone).date()
    except OverflowError:   # year 1 or 9999 with an offset: no phone's clock, and nothing is written
        raise DomainError("bad_client_time", _("手机上的时间不合理，请检查手机的日期和时间")) from None
    with write_transaction(session) as conn:
        if volunteer_id and conn.dialect.name == "postgresql":
            conn.execute(_LOCK, {"vid": volunteer_id})
        state = conn.execute(_STATE, {"vid": volunteer_id, "nonce": nonce, "pid": point_id, "did": device_id,
                                      "bh": browser_hash, "day": day, "since": _day_start(day, rules)}).first() \
            if volunteer_id else None
        received = clock()  # read only once the lock is held
        if client_time is not None and client_time.tzinfo is None:
            client_time = client_time.replace(tzinfo=timezone.utc)
        # a phone's clock running ahead is ignored; a scan sent a little late counts when it arrives
        now = client_time if client_time is not None and client_time < received - rules.offline_late_after \
            else received
        if state is not None and state.replay:
            data = json.loads(state.replay)
            if "error" in data:
                refusal = DomainError(data["error"]["code"], data["error"]["message"])
            else:
                result = ScanResult.from_json(state.replay)
        else:
            ctx: dict[str, Any] = {}
            try:
                if state is None:
                    raise DomainError("not_signed_in", _("这部手机还没有登录：请先用平安办发给您的登录链接或志愿者卡登录"))
                result = _decide(conn, state, version, rules=rules, now=now, lat=lat, lon=lon,
                                 accuracy=accuracy, device_id=device_id, ctx=ctx, ask=ask_before_ending,
                                 received=received, browser_hash=browser_hash, state_day=day)
            except DomainError as exc:
                refusal = exc
            _record(conn, volunteer_id=state.id if state else None, now=received if refusal else now,
                    received_at=received, client_time=client_time,
                    action=result.action if result else "refused", code="ok" if result else refusal.code,
                    point_id=ctx.get("point_id"), shift_id=ctx.get("shift_id"),
                    attendance_id=result.attendance.id if result and result.attendance else None,
                    nonce=nonce if state and not (result and result.action == "confirm_checkout") else None,
                    channel=channel, lat=lat, lon=lon, accuracy=accuracy,
                    distance=ctx.get("distance"), device_id=device_id, browser_hash=browser_hash,
                    response=result.to_json() if result else _refusal_json(refusal))
    if refusal is not None:
        raise refusal
    assert result is not None
    return result


def _decide(conn: Connection, state, version: int | None, *, rules: ScanRules, now: datetime,
            lat, lon, accuracy, device_id, ctx: dict, ask: bool = False,
            received: datetime | None = None, browser_hash: str | None = None,
            state_day: date | None = None) -> ScanResult:
    """`state_day`: the local day the state row's `shared_device`, `covered` and `any_policy` were
    read for; on another day they are asked again."""
    point = _point_from_state(state, version)
    ctx["point_id"] = point.id
    late = received is not None and now < received
    if late and received - now > rules.offline_max_delay:
        raise DomainError("offline_too_old", _(
            "这次扫码是 %(t)s 保存在手机上的，%(d)s后才联网提交，超过了 %(max)s的期限，没有计入时长。"
            "平安办会看到这条记录，请联系平安办核对。",
            t=now.astimezone(rules.zone).strftime("%m-%d %H:%M"), d=_duration_text(received - now),
            max=_duration_text(rules.offline_max_delay)))
    if withdrawal_in_effect(state.status, state.withdrawn_on, now.astimezone(rules.zone).date()):
        raise DomainError("volunteer_withdrawn", _("%(name)s 已退出志愿者队伍，无法签到", name=state.name))

    open_att = state if state.att_id is not None else None
    last_at = _dt(state.last_at)
    if late and last_at is not None and now < last_at:
        # History is not rewritten under a later scan: the coordinators decide.
        raise DomainError("offline_superseded", _(
            "这次扫码是 %(t)s 保存在手机上的，但之后已经有您的扫码记录（%(l)s），所以没有计入。请联系平安办核对。",
            t=now.astimezone(rules.zone).strftime("%m-%d %H:%M"), l=last_at.astimezone(rules.zone).strftime("%H:%M")))
    if last_at is not None and now - last_at < rules.debounce:
        current = state.att_id or conn.execute(_LAST_ATTENDANCE, {"vid": state.id}).scalar()
        return ScanResult("duplicate", _attendance_view(conn, current) if current else None, now, point.code,
                          point.name)

    if open_att is not None and open_att.ends_at is not None and now > _dt(open_att.ends_at) + rules.window_after:
        # A forgotten check-out from an earlier shift: close it as the job would have, then this
        # scan is a fresh check-in.
        at, why = auto_close_time(open_att.check_in_at, open_att.ends_at, state.withdrawn_on, rules.zone)
        _close(conn, _Att(open_att), at=at, status=ATT_AUTO_CLOSED, checkout_point_id=None, extra_flags=why,
               rules=rules, shift_start=open_att.starts_at, shift_end=open_att.ends_at)
        open_att = None

    flags, distance = _geofence_flags(point, lat, lon, accuracy, rules)
    ctx["distance"] = distance
    today = now.astimezone(rules.zone).date()
    if device_id is not None or browser_hash is not None:
        if today == state_day:
            shared = state.shared_device is not None
        else:
            shared = conn.execute(_SHARED_DEVICE, {"did": device_id, "bh": browser_hash, "vid": state.id,
                                                   "since": _day_start(today, rules)}).first() is not None
        if shared:
            flags.append(FLAG_SHARED_DEVICE)
    if last_at is not None and state.last_point_id is not None and state.last_point_id != point.id \
            and point.lat is not None:
        prev = conn.execute(_POINT_COORDS, {"pid": state.last_point_id}).first()
        if prev is not None and prev.lat is not None:
            hours_between = max((now - last_at).total_seconds() / 3600.0, 1e-6)
            if distance_m(prev.lat, prev.lon, point.lat, point.lon) / 1000.0 / hours_between > rules.max_speed_kmh:
                flags.append(FLAG_FAST_TRAVEL)
    if late:
        flags.append(FLAG_OFFLINE_LATE)
        if open_att is None:
            closed = conn.execute(_LATEST_ATTENDANCE, {"vid": state.id}).first()
            if closed is not None and _replaces_auto_close(closed, now, rules):
                return _late_check_out(conn, state, closed, point, now=now, flags=flags, rules=rules, ctx=ctx)

    if open_att is not None:
        if ask and _ends_early(open_att, now, rules):
            return _confirm_question(conn, state, point, now=now, ctx=ctx)
        return _check_out(conn, state, point, now=now, flags=flags, rules=rules, ctx=ctx)
    known_cover = (state.covered, state.any_policy) if today == state_day else None
    return _check_in(conn, state, point, now=now, flags=flags, rules=rules, ctx=ctx, known_cover=known_cover)


def _day_start(day: date, rules: "ScanRules") -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=rules.zone)


def _duration_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return _("%(m)d 分钟", m=minutes)
    if minutes % 60 == 0:
        return _("%(h)d 小时", h=minutes // 60)
    return _("%(h)d 小时 %(m)d 分钟", h=minutes // 60, m=minutes % 60)


_LATEST_ATTENDANCE = (select(A.c.id, A.c.volunteer_id, A.c.event_id, A.c.shift_id, A.c.point_id, A.c.status,
                             A.c.check_in_at, A.c.check_out_at, A.c.flags, A.c.review_status, A.c.walk_in,
                             SH.c.starts_at, SH.c.ends_at)
                      .select_from(A.outerjoin(SH, SH.c.id == A.c.shift_id))
                      .where(A.c.volunteer_id == bindparam("vid"))
                      .order_by(A.c.check_in_at.desc(), A.c.id.desc()).limit(1))


def _replaces_auto_close(att, now: datetime, rules: ScanRules) -> bool:
    """A late check-out belongs to the volunteer's last attendance when the auto-close job closed
    it meanwhile (the phone was offline at check-out time): still within that shift's check-out
    window, after the check-in, not ended by a withdrawal and not already rejected."""
    return (att.status == ATT_AUTO_CLOSED and att.ends_at is not None and att.review_status != REVIEW_REJECTED
            and FLAG_WITHDRAWN not in (att.flags or "").split(",")
            and _dt(att.check_in_at) < now <= _dt(att.ends_at) + rules.window_after)


def _programme_year_minutes(conn: Connection, state, now: datetime, zone) -> int:
    """The credited minutes of the programme year `now` falls in (its start is a setting, read by
    the state query: a year from 1 March is not the calendar year)."""
    start = parse_year_start(state.year_start)
    return year_total_minutes(conn, state.id, start.year_of(now.astimezone(zone).date()), start_day=start)


def _late_check_out(conn, state, att, point, *, now, flags, rules, ctx) -> ScanResult:
    """Replace the auto-close time with the time the volunteer really scanned, flagged for review."""
    ctx["shift_id"] = att.shift_id
    if point.id != att.point_id and att.event_id is not None \
            and conn.execute(_SAME_EVENT, {"eid": att.event_id, "pid": point.id}).first() is None:
        where = conn.execute(_POINT_COORDS, {"pid": att.point_id}).first()
        raise DomainError("wrong_event", _("您在“%(p)s”的签到还没有签退：请在本次活动的点位扫码签退",
                                           p=where.name if where else ""))
    flag_text = _flags_str(att.flags or "", flags)
    conn.execute(update(A).where(A.c.id == att.id, A.c.status == ATT_AUTO_CLOSED)
                 .values(status=ATT_CLOSED, check_out_at=now, checkout_point_id=point.id, flags=flag_text,
                         review_status=REVIEW_FLAGGED))
    days = set(credit_days(att.check_in_at, _dt(att.check_out_at), att.starts_at, att.ends_at, rules.zone))
    days.update(credit_days(att.check_in_at, now, att.starts_at, att.ends_at, rules.zone))
    recompute_days(conn, att.volunteer_id, days, cap_minutes=rules.daily_cap_minutes, zone=rules.zone)
    view = _attendance_view(conn, att.id)
    total = _programme_year_minutes(conn, state, now, rules.zone)
    return ScanResult("check_out", view, now, point.code, point.name, year_minutes=total, flags=view.flags)


class _Att:
    """The open attendance's columns of the state row, under the names `_close` reads."""

    def __init__(self, state) -> None:
        self.id, self.volunteer_id = state.att_id, state.id
        self.check_in_at, self.flags, self.review_status = state.check_in_at, state.flags, state.review_status


def _ends_early(open_att, now: datetime, rules: ScanRules) -> bool:
    if now - _dt(open_att.check_in_at) < rules.checkout_confirm:
        return True
    return open_att.ends_at is not None and now < _dt(open_att.ends_at)


def _confirm_question(conn, state, point, *, now, ctx) -> ScanResult:
    """What the phone shows before ending a patrol early: how long so far, when the shift ends,
    and where the patrol started (a scan at another point of the campaign checks out there)."""
    ctx["shift_id"] = state.shift_id
    _check_same_event(conn, state, point)
    started = conn.execute(_POINT_COORDS, {"pid": state.att_point_id}).first()
    elapsed = max(int((now - _dt(state.check_in_at)).total_seconds() // 60), 0)
    view = AttendanceView(state.att_id, ATT_OPEN, SOURCE_SCAN, None, started.name if started is not None else None,
                          state.shift_id, _dt(state.check_in_at), None, 0, bool(state.walk_in),
                          tuple(f for f in (state.flags or "").split(",") if f))
    return ScanResult("confirm_checkout", view, now, point.code, point.name,
                      shift_ends_at=_dt(state.ends_at) if state.ends_at is not None else None,
                      elapsed_minutes=elapsed)


def _check_same_event(conn, state, point) -> None:
    if point.id != state.att_point_id and state.event_id is not None:
        if conn.execute(_SAME_EVENT, {"eid": state.event_id, "pid": point.id}).first() is None:
            where = conn.execute(_POINT_COORDS, {"pid": state.att_point_id}).first()
            raise DomainError("wrong_event", _("您在“%(p)s”的签到还没有签退：请在本次活动的点位扫码签退",
                                               p=where.name if where else ""))


def _check_out(conn, state, point, *, now, flags, rules, ctx) -> ScanResult:
    ctx["shift_id"] = state.shift_id
    _check_same_event(conn, state, point)
    minutes, flag_text = _close(conn, _Att(state), at=now, status=ATT_CLOSED, checkout_point_id=point.id,
                                extra_flags=flags, rules=rules, shift_start=state.starts_at, shift_end=state.ends_at)
    start_point = point if point.id == state.att_point_id else conn.execute(_POINT_COORDS,
                                                                            {"pid": state.att_point_id}).first()
    view = AttendanceView(state.att_id, ATT_CLOSED, SOURCE_SCAN, point.code if start_point is point else None,
                          start_point.name if start_point is not None else None, state.shift_id,
                          _dt(state.check_in_at), now, minutes, bool(state.walk_in),
                          tuple(f for f in flag_text.split(",") if f))
    total = _programme_year_minutes(conn, state, now, rules.zone)
    return ScanResult("check_out", view, now, point.code, point.name, year_minutes=total, flags=view.flags)


def insurance_flags(conn: Connection, volunteer_id: int, now: datetime, rules: ScanRules,
                    known: tuple[Any, Any] | None = None) -> list[str]:
    """The safety gate: a volunteer not insured on the day is flagged (`flag`) or refused (`enforce`).

    It applies once the office has entered any policy at all: before insurance is on file, every
    check-in would otherwise be flagged. After that a day no policy covers is a lapse, not a reason
    to switch the gate off (issue 9, item 12).
    """
    if rules.insurance_gate == "off":
        return []
    # `known`: (covered, any_policy) for `now`'s day, already read by the scan's state query.
    covered, any_policy = known if known is not None else \
        conn.execute(_INSURANCE, {"vid": volunteer_id, "day": now.astimezone(rules.zone).date()}).first()
    if any_policy is None or covered is not None:
        return []
    if rules.insurance_gate == "enforce":
        raise DomainError("uninsured", _("您今天不在意外险保障名单中，按规定不能上岗，请联系平安办"))
    return [FLAG_UNINSURED]


def _check_in(conn, state, point, *, now, flags, rules, ctx, known_cover=None) -> ScanResult:
    shift = choose_shift(conn, point.id, now, rules, volunteer_id=state.id)
    if shift is None:
        raise DomainError("no_active_shift", _("点位“%(name)s”现在没有可签到的班次（开始前 %(b)d 分钟至结束后 %(a)d 分钟可扫码）",
                                               name=point.name, b=int(rules.window_before.total_seconds() // 60),
                                               a=int(rules.window_after.total_seconds() // 60)))
    ctx["shift_id"] = shift.id
    walk_in = shift.my_status is None or shift.my_status == ASSIGNMENT_DECLINED
    if walk_in and shift.my_walk_in is None and shift.walk_ins >= shift.capacity - shift.assigned:
        raise DomainError("shift_full", _("本班次名额已满（%(c)d 人），请联系现场负责人", c=shift.capacity))
    flags = flags + insurance_flags(conn, state.id, now, rules, known=known_cover)
    flag_text = _flags_str(flags)
    new_id = conn.execute(_INSERT_ATTENDANCE, {
        "volunteer_id": state.id, "event_id": shift.event_id, "shift_id": shift.id, "point_id": point.id,
        "source": SOURCE_SCAN, "status": ATT_OPEN, "check_in_at": now, "credited_minutes": 0,
        "work_date": now.astimezone(rules.zone).date(), "review_status": REVIEW_FLAGGED if flag_text else REVIEW_NONE,
        "flags": flag_text, "walk_in": walk_in, "created_at": now}).scalar_one()
    view = AttendanceView(new_id, ATT_OPEN, SOURCE_SCAN, point.code, point.name, shift.id, now, None, 0, walk_in,
                          tuple(f for f in flag_text.split(",") if f))
    return ScanResult("check_in", view, now, point.code, point.name, flags=view.flags)


def close_forgotten(session: Session, *, rules: ScanRules = ScanRules(), clock: Clock = system_clock) -> list[int]:
    """Close attendances whose shift's check-out window has passed: `auto_closed`, credited up to
    the shift end (see `auto_close_time`), flagged for review. Safe to run twice, or beside live scans."""
    closed: list[int] = []
    now = clock()
    candidates = session.execute(select(A.c.id, A.c.volunteer_id).select_from(A.join(SH, SH.c.id == A.c.shift_id))
                                 .where(A.c.status == ATT_OPEN, SH.c.ends_at < now - rules.window_after)).all()
    session.rollback()
    for att_id, volunteer_id in candidates:
        with write_transaction(session) as conn:
            lock_volunteer(conn, volunteer_id)
            att = conn.execute(select(A.c.id, A.c.volunteer_id, A.c.check_in_at, A.c.flags, A.c.review_status,
                                      SH.c.starts_at, SH.c.ends_at, V.c.withdrawn_on)
                               .select_from(A.join(SH, SH.c.id == A.c.shift_id).join(V, V.c.id == A.c.volunteer_id))
                               .where(A.c.id == att_id, A.c.status == ATT_OPEN)).first()
            if att is None:
                continue
            at, why = auto_close_time(att.check_in_at, att.ends_at, att.withdrawn_on, rules.zone)
            _close(conn, att, at=at, status=ATT_AUTO_CLOSED, checkout_point_id=None, extra_flags=why, rules=rules,
                   shift_start=att.starts_at, shift_end=att.ends_at)
            closed.append(att_id)
    return closed


def close_for_withdrawal(session: Session, volunteer_id: int, *, rules: ScanRules = ScanRules(),
                         clock: Clock = system_clock) -> int | None:
    """End the patrol of a volunteer who has just been withdrawn, at this moment, flagged."""
    with write_transaction(session) as conn:
        lock_volunteer(conn, volunteer_id)
        now = clock()
        att = _open_attendance(conn, volunteer_id)
        if att is None:
            return None
        _close(conn, att, at=max(now, _dt(att.check_in_at)), status=ATT_AUTO_CLOSED, checkout_point_id=None,
               extra_flags=[FLAG_WITHDRAWN], rules=rules, shift_start=att.starts_at, shift_end=att.ends_at)
        return att.id


def open_attendance(session: Session, volunteer_id: int) -> AttendanceView | None:
    row = session.execute(select(A.c.id).where(A.c.volunteer_id == volunteer_id, A.c.status == ATT_OPEN)).scalar()
    return _attendance_view(session.connection(), row) if row else None


@dataclass(frozen=True)
class LastCheckOut:
    check_out_at: datetime
    point_name: str          # where the patrol was ended
    credited_minutes: int

    @property
    def credited_hours(self) -> float:
        return floor_hours(self.credited_minutes)


def last_check_out(session: Session, volunteer_id: int, *, since: datetime) -> LastCheckOut | None:
    """The volunteer's latest check-out after `since` (the scan page says "checked out at 21:02"
    above a fresh 签到 button, so a scan "to make sure" does not start a new patrol). Only a patrol
    the volunteer ended: one the night job closed was no check-out of theirs."""
    row = session.execute(
        select(A.c.check_out_at, P.c.name, A.c.credited_minutes)
        .select_from(A.join(P, P.c.id == func.coalesce(A.c.checkout_point_id, A.c.point_id), isouter=True))
        .where(A.c.volunteer_id == volunteer_id, A.c.status == ATT_CLOSED, A.c.check_out_at >= since)
        .order_by(A.c.check_out_at.desc()).limit(1)).first()
    return LastCheckOut(row[0], row[1] or "", row[2] or 0) if row else None


@dataclass(frozen=True)
class ShiftInfo:
    id: int
    event_name: str
    point_code: str
    point_name: str
    starts_at: datetime
    ends_at: datetime
    assigned: bool


def current_shift_at(session: Session, point_id: int, volunteer_id: int | None, *, rules: ScanRules = ScanRules(),
                     clock: Clock = system_clock) -> ShiftInfo | None:
    """The shift a scan at this point would belong to now (for the page before the button)."""
    conn = session.connection()
    shift = choose_shift(conn, point_id, clock(), rules, volunteer_id=volunteer_id)
    if shift is None:
        return None
    row = conn.execute(select(EV.c.name, P.c.code, P.c.name.label("pname"))
                       .select_from(SH.join(EV, EV.c.id == SH.c.event_id).join(P, P.c.id == SH.c.point_id))
                       .where(SH.c.id == shift.id)).one()
    assigned = bool(volunteer_id) and conn.execute(select(AS.c.id).where(
        AS.c.shift_id == shift.id, AS.c.volunteer_id == volunteer_id, AS.c.status != ASSIGNMENT_DECLINED)).first() is not None
    return ShiftInfo(shift.id, row.name, row.code, row.pname, _dt(shift.starts_at), _dt(shift.ends_at), assigned)


@dataclass(frozen=True)
class NextShift:
    """The next shift at a point that is not open for scanning yet: what a volunteer who came too
    early (or between shifts) needs to know, "下一班 18:30 开始，18:00 起可签到"."""
    starts_at: datetime
    opens_at: datetime
    event_name: str


def next_shift_at(session: Session, point_id: int, *, rules: ScanRules = ScanRules(),
                  clock: Clock = system_clock) -> NextShift | None:
    now = clock()
    row = session.execute(select(SH.c.starts_at, EV.c.name).select_from(SH.join(EV, EV.c.id == SH.c.event_id))
                          .where(SH.c.point_id == point_id, SH.c.starts_at > now + rules.window_before)
                          .order_by(SH.c.starts_at).limit(1)).first()
    if row is None:
        return None
    starts = _dt(row.starts_at)
    return NextShift(starts, starts - rules.window_before, row.name)


def upcoming_shifts(session: Session, volunteer_id: int, *, clock: Clock = system_clock, limit: int = 10) -> list[ShiftInfo]:
    rows = session.execute(select(SH.c.id, EV.c.name, P.c.code, P.c.name.label("pname"), SH.c.starts_at, SH.c.ends_at)
                           .select_from(AS.join(SH, SH.c.id == AS.c.shift_id).join(EV, EV.c.id == SH.c.event_id)
                                        .join(P, P.c.id == SH.c.point_id))
                           .where(AS.c.volunteer_id == volunteer_id, AS.c.status != ASSIGNMENT_DECLINED,
                                  SH.c.ends_at > clock())
                           .order_by(SH.c.starts_at).limit(limit)).all()
    return [ShiftInfo(r.id, r.name, r.code, r.pname, _dt(r.starts_at), _dt(r.ends_at), True) for r in rows]


def proxy_check_in(session: Session, volunteer_id: int, point_id: int, *, by_user_id: int,
                   rules: ScanRules = ScanRules(), clock: Clock = system_clock,
                   by_leader: bool = False) -> AttendanceView:
    """A coordinator (or team leader) checks in a volunteer without a working phone.

    Same shift rule as a scan, no geofence or capacity check (the person is standing there);
    recorded as `proxy` with who did it, and counted as adjusted time, not scan-verified. A team
    leader's is flagged `proxy_by_leader` for the review queue.
    """
    with write_transaction(session) as conn:
        volunteer = lock_volunteer(conn, volunteer_id)
        now = clock()
        if volunteer is None:
            raise DomainError("not_found", _("志愿者不存在"))
        if withdrawal_in_effect(volunteer.status, volunteer.withdrawn_on, now.astimezone(rules.zone).date()):
            raise DomainError("volunteer_withdrawn", _("%(name)s 已退出志愿者队伍，无法签到", name=volunteer.name))
        if _open_attendance(conn, volunteer_id) is not None:
            raise DomainError("already_checked_in", _("%(name)s 已经签到，尚未签退", name=volunteer.name))
        point = conn.execute(select(P.c.id, P.c.name).where(P.c.id == point_id)).first()
        if point is None:
            raise DomainError("not_found", _("点位不存在"))
        shift = choose_shift(conn, point.id, now, rules, volunteer_id=volunteer_id)
        if shift is None:
            raise DomainError("no_active_shift", _("点位“%(name)s”现在没有可签到的班次", name=point.name))
        assigned = shift.my_status
        flag_text = _flags_str(insurance_flags(conn, volunteer_id, now, rules), [FLAG_PROXY_LEADER] if by_leader else [])
        new_id = conn.execute(insert(A).values(
            volunteer_id=volunteer_id, event_id=shift.event_id, shift_id=shift.id, point_id=point.id,
            source=SOURCE_PROXY, status=ATT_OPEN, check_in_at=now, credited_minutes=0,
            work_date=now.astimezone(rules.zone).date(), review_status=REVIEW_FLAGGED if flag_text else REVIEW_NONE,
            flags=flag_text, walk_in=assigned is None or assigned == ASSIGNMENT_DECLINED, recorded_by_user_id=by_user_id,
            created_at=now).returning(A.c.id)).scalar_one()
        _record(conn, volunteer_id=volunteer_id, now=now, action="check_in", code="ok", point_id=point.id,
                shift_id=shift.id, attendance_id=new_id, channel=f"proxy:{by_user_id}")
        return _attendance_view(conn, new_id)


def proxy_check_out(session: Session, attendance_id: int, *, by_user_id: int, rules: ScanRules = ScanRules(),
                    clock: Clock = system_clock, by_leader: bool = False) -> AttendanceView:
    """Check out an open attendance on the volunteer's behalf (credited like a scan; a team
    leader's flagged for review, as `proxy_check_in`)."""
    volunteer_id = session.execute(select(A.c.volunteer_id).where(A.c.id == attendance_id)).scalar()
    session.rollback()
    if volunteer_id is None:
        raise DomainError("not_found", _("签到记录不存在"))
    with write_transaction(session) as conn:
        lock_volunteer(conn, volunteer_id)
        now = clock()
        att = _open_attendance(conn, volunteer_id)
        if att is None or att.id != attendance_id:
            raise DomainError("not_open", _("该记录已经签退"))
        _close(conn, att, at=now, status=ATT_CLOSED, checkout_point_id=att.point_id,
               extra_flags=[FLAG_PROXY_LEADER] if by_leader else [], rules=rules,
               shift_start=att.starts_at, shift_end=att.ends_at)
        conn.execute(update(A).where(A.c.id == attendance_id).values(
            recorded_by_user_id=by_user_id,
            # a leader decides the credited end: back to review even after an approved check-in
            **({"review_status": REVIEW_FLAGGED} if by_leader else {})))
        _record(conn, volunteer_id=volunteer_id, now=now, action="check_out", code="ok", point_id=att.point_id,
                shift_id=att.shift_id, attendance_id=attendance_id, channel=f"proxy:{by_user_id}")
        return _attendance_view(conn, attendance_id)
