"""Patrol points as coordinators edit them."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.point import PatrolPoint
from services.coords import WGS84, to_wgs84
from services.errors import DomainError
from services.i18n import _
from services.lengths import check_length

_CODE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")


@dataclass
class PointInput:
    code: str
    name: str
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_m: int = 150
    coords: str = WGS84
    active: bool = True


def _validate(data: PointInput) -> tuple[float | None, float | None]:
    if not _CODE_RE.match(data.code or ""):
        raise DomainError("bad_code", _("点位编号只能包含字母、数字、- 和 _（最多 32 个字符）"))
    if not (data.name or "").strip():
        raise DomainError("required", _("点位名称不能为空"))
    check_length(data.name.strip(), 128, _("点位名称"))
    check_length((data.address or "").strip(), 255, _("地址"))
    if not 1 <= data.radius_m <= 5000:
        raise DomainError("out_of_range", _("半径应为 1 到 5000 米"))
    if (data.lat is None) != (data.lon is None):
        raise DomainError("coords_incomplete", _("经度和纬度要么都填，要么都不填"))
    if data.lat is None:
        return None, None
    if not (-90 <= data.lat <= 90 and -180 <= data.lon <= 180):
        raise DomainError("out_of_range", _("经纬度超出范围"))
    lat, lon = to_wgs84(data.lat, data.lon, data.coords)
    return round(lat, 7), round(lon, 7)


def create_point(session: Session, data: PointInput) -> PatrolPoint:
    lat, lon = _validate(data)
    if session.scalar(select(PatrolPoint.id).where(PatrolPoint.code == data.code)) is not None:
        raise DomainError("code_taken", _("点位编号“%(c)s”已存在", c=data.code))
    point = PatrolPoint(code=data.code, name=data.name.strip(), address=(data.address or "").strip() or None,
                        lat=lat, lon=lon, radius_m=data.radius_m, active=data.active)
    session.add(point)
    session.commit()
    return point


def update_point(session: Session, point_id: int, data: PointInput) -> PatrolPoint:
    point = session.get(PatrolPoint, point_id)
    if point is None:
        raise DomainError("not_found", _("点位不存在"))
    lat, lon = _validate(data)
    clash = session.scalar(select(PatrolPoint.id).where(PatrolPoint.code == data.code, PatrolPoint.id != point_id))
    if clash is not None:
        raise DomainError("code_taken", _("点位编号“%(c)s”已存在", c=data.code))
    point.code, point.name = data.code, data.name.strip()
    point.address = (data.address or "").strip() or None
    point.lat, point.lon, point.radius_m, point.active = lat, lon, data.radius_m, data.active
    session.commit()
    return point


def get_point_by_code(session: Session, code: str) -> PatrolPoint:
    point = session.scalar(select(PatrolPoint).where(PatrolPoint.code == code))
    if point is None:
        raise DomainError("not_found", _("点位“%(c)s”不存在", c=code))
    return point
