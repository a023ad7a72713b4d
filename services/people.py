"""What the coordinator's people pages show beyond the roster row: a phone in words, a volunteer's
hours by campaign, the roster filtered by hours band and by "not signed in on any phone yet", and
the WeChat message that carries a sign-in link."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from models.attendance import REVIEW_REJECTED, Attendance, AttendanceCredit, HourAdjustment
from models.event import Event
from models.signin import Device
from models.volunteer import STATUS_ACTIVE, STATUS_WITHDRAWN, Volunteer
from services.hours import floor_hours
from services.programme_year import year_dates
from services.i18n import _
from services.volunteers import PAGE_SIZE, VolunteerRow, _row

# Hours bands in the order of the indicator histogram: (key, lower minutes inclusive, upper exclusive).
HOUR_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 1), ("0-3", 1, 3 * 60), ("3-6", 3 * 60, 6 * 60), ("6-12", 6 * 60, 12 * 60), ("12+", 12 * 60, None))
_BROWSERS = {"Chrome Mobile": "Chrome", "Chrome Mobile WebView": "WebView", "Mobile Safari": "Safari",
             "Mobile Safari UI/WKWebView": "Safari", "Firefox Mobile": "Firefox", "Samsung Internet": "Samsung",
             "HeyTap Browser": "HeyTap", "MiuiBrowser": "MIUI", "Huawei Browser": "Huawei"}


@lru_cache(maxsize=2048)
def _parse(user_agent: str) -> tuple[str | None, str | None, str | None, str | None]:
    from ua_parser import parse  # a maintained parser (the uap-core rules), not our own regexes

    result = parse(user_agent)
    os_name = os_major = browser = major = None
    if result.os is not None:
        os_name, os_major = result.os.family, result.os.major
    if result.user_agent is not None:
        browser, major = result.user_agent.family, result.user_agent.major
    return os_name, os_major, browser, major


def device_label(user_agent: str | None) -> str:
    """"Android · Chrome 131 · 微信": the phone as a coordinator recognises it on a call.

    Android's version is left out: browsers now send a frozen "Android 10". WeChat's in-app browser
    is named from its MicroMessenger token.
    """
    ua = (user_agent or "").strip()
    if not ua:
        return _("未知设备")
    os_name, os_major, browser, major = _parse(ua[:512])
    parts: list[str] = []
    if os_name and os_name != "Other":
        parts.append(f"{os_name} {os_major}" if os_name == "iOS" and os_major else os_name)
    wechat = "MicroMessenger" in ua
    if browser and browser != "Other" and not (wechat and browser.startswith("WeChat")):
        name = _BROWSERS.get(browser, browser)
        parts.append(f"{name} {major}" if major else name)
    if wechat:
        parts.append(_("微信"))
    return " · ".join(parts) or _("未知设备")


@dataclass(frozen=True)
class CampaignHours:
    event_id: int | None
    name: str
    records: int
    minutes: int

    @property
    def hours(self) -> float:
        return floor_hours(self.minutes)


def hours_by_campaign(session: Session, volunteer_id: int, year: int) -> list[CampaignHours]:
    """A volunteer's credited time in a programme year, campaign by campaign; time outside any
    campaign and hand-made adjustments each get their own line, so the lines add up to the total."""
    start, end = year_dates(session, year)
    C, A = AttendanceCredit, Attendance
    rows = session.execute(
        select(A.event_id, Event.name, func.count(func.distinct(A.id)), func.coalesce(func.sum(C.minutes), 0))
        .select_from(C).join(A, A.id == C.attendance_id).outerjoin(Event, Event.id == A.event_id)
        .where(C.volunteer_id == volunteer_id, C.work_date.between(start, end), A.review_status != REVIEW_REJECTED)
        .group_by(A.event_id, Event.name).order_by(func.min(C.work_date))).all()
    out = [CampaignHours(eid, name or _("不属于任何活动"), n, int(m)) for eid, name, n, m in rows]
    adjusted = session.execute(select(func.count(HourAdjustment.id), func.coalesce(func.sum(HourAdjustment.minutes), 0))
                               .where(HourAdjustment.volunteer_id == volunteer_id,
                                      HourAdjustment.work_date.between(start, end))).one()
    if adjusted[0]:
        out.append(CampaignHours(None, _("人工调整"), int(adjusted[0]), int(adjusted[1])))
    return out


@dataclass(frozen=True)
class RosterRow:
    volunteer: VolunteerRow
    minutes: int
    signed_in: bool

    @property
    def hours(self) -> float:
        return floor_hours(self.minutes)


@dataclass(frozen=True)
class RosterPage:
    rows: list[RosterRow]
    total: int
    page: int
    pages: int


def _year_minutes(start, end):
    credits = (select(func.coalesce(func.sum(AttendanceCredit.minutes), 0))
               .select_from(AttendanceCredit).join(Attendance, Attendance.id == AttendanceCredit.attendance_id)
               .where(AttendanceCredit.volunteer_id == Volunteer.id, AttendanceCredit.work_date.between(start, end),
                      Attendance.review_status != REVIEW_REJECTED).correlate(Volunteer).scalar_subquery())
    adjusted = (select(func.coalesce(func.sum(HourAdjustment.minutes), 0))
                .where(HourAdjustment.volunteer_id == Volunteer.id, HourAdjustment.work_date.between(start, end))
                .correlate(Volunteer).scalar_subquery())
    return credits + adjusted


def roster(session: Session, *, year: int, q: str = "", team: str = "", status: str = "", band: str = "",
           not_signed_in: bool = False, page: int = 1, per_page: int = PAGE_SIZE) -> RosterPage:
    """The roster with each volunteer's hours this year and whether a phone is signed in."""
    start, end = year_dates(session, year)
    minutes = _year_minutes(start, end).label("minutes")
    signed_in = exists(select(Device.id).where(Device.volunteer_id == Volunteer.id, Device.revoked_at.is_(None)))
    conds = []
    q = (q or "").strip()
    if q:
        like = f"%{q}%"
        conds.append(or_(Volunteer.name.like(like), Volunteer.phone.like(like), Volunteer.vest_no.like(like)))
    if team:
        conds.append(Volunteer.team == team)
    if status in (STATUS_ACTIVE, STATUS_WITHDRAWN):
        conds.append(Volunteer.status == status)
    if not_signed_in:
        conds.append(~signed_in)
    bands = {key: (low, high) for key, low, high in HOUR_BANDS}
    if band in bands:
        low, high = bands[band]
        total = _year_minutes(start, end)
        conds.append(and_(total >= low, total < high) if high is not None else total >= low)
    stmt = select(Volunteer, minutes, signed_in.label("signed_in")).where(*conds)
    count = session.scalar(select(func.count(Volunteer.id)).where(*conds)) or 0
    pages = max(1, -(-count // per_page))
    page = min(max(1, page), pages)
    rows = session.execute(stmt.order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return RosterPage([RosterRow(_row(v), int(m or 0), bool(s)) for v, m, s in rows], count, page, pages)


def wechat_message(name: str, url: str, expires_at: datetime, zone) -> str:
    """The text a coordinator pastes into WeChat with a sign-in link: who it is for, what to tap,
    until when, and that it works once."""
    return _("%(name)s 您好！这是您的平安马甲签到登录链接，请用您自己的手机打开，点“确认登录”即可（只能用一次，%(until)s 前有效）：\n%(url)s\n"
             "登录后，在巡逻点位扫二维码即可签到、签退。如有问题请联系平安办。",
             name=name, url=url, until=expires_at.astimezone(zone).strftime("%m-%d %H:%M"))
