"""The programme year: one installation-wide start date, and every "which year?" answered here.

PROGRAMME.md: "the programme year is a calendar year by default (configurable)". An office whose
funding runs from 1 March to the end of February sets the start to 03-01; a year is labelled by the
calendar year it starts in (year 2027 = 1 March 2027 – 29 February 2028). Hours totals, indicators,
the digest, exports, /api/v1/me, the bot's /hours and the stored per-year rows (settings, budget
lines, expenditures, documents) all use that label, so they can only agree if they all ask this
module. The start is stored in `app_settings` (admins change it on the settings page or with
`flask --app app programme-year-start`), and it cannot change once any year holds data: that would
silently move recorded hours and spending from one year to another.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from models.signin import AppSetting
from services.clock import SHANGHAI
from services.errors import DomainError
from services.i18n import _

SETTING_KEY = "programme_year_start"


@dataclass(frozen=True)
class YearStart:
    """The month and day every programme year starts on (29 February is not allowed)."""

    month: int = 1
    day: int = 1

    @classmethod
    def parse(cls, text: str) -> "YearStart":
        """'03-01' (or '3-1', '3月1日'); raises DomainError for anything that is not a real date."""
        cleaned = (text or "").strip().replace("月", "-").replace("日", "").replace("/", "-")
        try:
            month, day = (int(part) for part in cleaned.split("-"))
            date(2001, month, day)  # a non-leap year: 29 February would move every fourth year
        except (ValueError, TypeError):
            raise DomainError("bad_year_start", _("年度起始日“%(v)s”无效：请填写月-日，例如 03-01（不能是 2 月 29 日）",
                                                  v=text or "")) from None
        return cls(month, day)

    def __str__(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"

    def first_day(self, label: int) -> date:
        return date(label, self.month, self.day)

    def year_of(self, local_day: date) -> int:
        return local_day.year if (local_day.month, local_day.day) >= (self.month, self.day) else local_day.year - 1

    def dates(self, label: int) -> tuple[date, date]:
        return self.first_day(label), self.first_day(label + 1) - timedelta(days=1)


# Built once: every check-out asks (the scan reads it inside its state query, `services/checkin.py`).
STORED_START = select(AppSetting.value).where(AppSetting.key == SETTING_KEY)


def year_start(conn: Any) -> YearStart:
    """The stored start (a Session or a Connection); 1 January when never set."""
    return parse_year_start(conn.execute(STORED_START).scalar())


def parse_year_start(value: str | None) -> YearStart:
    """The setting's stored text (None when never set) as a `YearStart`."""
    return YearStart.parse(value) if value else YearStart()


def programme_year_of(conn: Any, local_day: date) -> int:
    """The label of the programme year a Shanghai calendar day belongs to."""
    return year_start(conn).year_of(local_day)


def current_year(conn: Any, now: datetime, zone: ZoneInfo = SHANGHAI) -> int:
    return programme_year_of(conn, now.astimezone(zone).date())


def year_dates(conn: Any, label: int) -> tuple[date, date]:
    """First and last local day of a programme year (both inclusive)."""
    return year_start(conn).dates(label)


def year_bounds(conn: Any, label: int, zone: ZoneInfo = SHANGHAI) -> tuple[datetime, datetime]:
    """[start, end) of a programme year as instants, for timestamps such as sent messages."""
    first, last = year_dates(conn, label)
    return (datetime.combine(first, time(), tzinfo=zone),
            datetime.combine(last + timedelta(days=1), time(), tzinfo=zone))


def default_due(start: YearStart, label: int) -> date:
    """Insurance and equipment are due by the end of the year's third month (31 March by default)."""
    first = start.first_day(label)
    month = first.month + 3
    year, month = first.year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, min(first.day, calendar.monthrange(year, month)[1])) - timedelta(days=1)


def holds_data(conn: Any) -> bool:
    """Whether any year has recorded facts (patrols, hours, spending, ledgers, documents)."""
    from models.attendance import Attendance, HourAdjustment
    from models.programme import (Complaint, EquipmentDelivery, EquipmentIssue, Expenditure, InsurancePolicy,
                                  ProgrammeDocument)

    return any(conn.execute(select(model.id).limit(1)).first() is not None
               for model in (Attendance, HourAdjustment, Expenditure, Complaint, EquipmentDelivery, EquipmentIssue,
                             InsurancePolicy, ProgrammeDocument))


def set_year_start(session: Any, text: str, *, by: str | None) -> YearStart:
    """Change the start; refused once any year holds data. Stored year settings that still carry the
    old default due dates move with it (they were never chosen by anyone)."""
    from models.programme import ProgrammeYear

    new = YearStart.parse(text)
    old = year_start(session)
    if new == old:
        return new
    if holds_data(session):
        raise DomainError("year_start_locked", _("已有年度数据（签到、时长、支出或台账），不能再修改年度起始日"))
    for row in session.scalars(select(ProgrammeYear)):
        if row.insurance_due == default_due(old, row.year):
            row.insurance_due = default_due(new, row.year)
        if row.equipment_due == default_due(old, row.year):
            row.equipment_due = default_due(new, row.year)
    setting = session.get(AppSetting, SETTING_KEY)
    if setting is None:
        session.add(AppSetting(key=SETTING_KEY, value=str(new), updated_by=by))
    else:
        setting.value, setting.updated_by = str(new), by
    session.commit()
    return new
