"""Time: a clock is injected into services so tests can travel in time."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def fixed_clock(moment: datetime) -> Clock:
    if moment.tzinfo is None:
        raise ValueError("a clock must be timezone-aware")
    return lambda: moment


def local_zone(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name) if name else SHANGHAI


def to_local(moment: datetime, zone: ZoneInfo = SHANGHAI) -> datetime:
    return moment.astimezone(zone)


def local_date(moment: datetime, zone: ZoneInfo = SHANGHAI) -> date:
    return moment.astimezone(zone).date()


def from_local(naive: datetime, zone: ZoneInfo = SHANGHAI) -> datetime:
    """A wall-clock time in the programme's zone, as an aware UTC datetime."""
    return naive.replace(tzinfo=zone).astimezone(timezone.utc)
