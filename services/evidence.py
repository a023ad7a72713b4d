"""Why a record was flagged, in words and numbers a coordinator can decide on in seconds: the
distance from the point against the phone's accuracy, the other volunteer on a shared phone, the
speed between two points, and a small sketch of the point, its geofence and the scan position."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.attendance import Attendance, ScanRecord
from models.point import PatrolPoint
from models.volunteer import Volunteer
from services.clock import SHANGHAI
from services.coords import distance_m, wgs84_to_gcj02
from services.i18n import _

ACCEPTED = ("check_in", "check_out")
SKETCH_HALF = 60  # the sketch is 2 × SKETCH_HALF px square around the point


@dataclass(frozen=True)
class Sketch:
    """An SVG-ready drawing in pixels, centred on the point (north up)."""

    size: int
    fence_r: float
    scan_x: float | None
    scan_y: float | None
    accuracy_r: float
    scale_m: int         # the length of the scale bar in metres
    scale_px: float


@dataclass(frozen=True)
class ScanFact:
    action: str
    at: datetime
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    distance_m: float | None
    sketch: Sketch | None


@dataclass
class Evidence:
    attendance_id: int
    reasons: list[str] = field(default_factory=list)
    scans: list[ScanFact] = field(default_factory=list)
    amap_url: str | None = None
    radius_m: int | None = None


def amap_marker_url(lat: float, lon: float, name: str) -> str:
    """Amap's public marker link; Amap reads GCJ-02, the points are stored in WGS-84."""
    glat, glon = wgs84_to_gcj02(lat, lon)
    query = urlencode({"position": f"{glon:.6f},{glat:.6f}", "name": name, "src": "pingan", "coordinate": "gaode",
                       "callnative": "0"}, quote_via=quote)
    return f"https://uri.amap.com/marker?{query}"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _sketch(point: PatrolPoint, lat: float | None, lon: float | None, accuracy: float | None) -> Sketch | None:
    if point.lat is None or point.lon is None:
        return None
    radius = float(point.radius_m or 0)
    dx = dy = None
    reach = radius
    if lat is not None and lon is not None:
        dy = distance_m(point.lat, point.lon, lat, point.lon) * (1 if lat >= point.lat else -1)
        dx = distance_m(point.lat, point.lon, point.lat, lon) * (1 if lon >= point.lon else -1)
        reach = max(reach, math.hypot(dx, dy) + (accuracy or 0))
    reach = max(reach, 10.0) * 1.1
    scale = (SKETCH_HALF - 4) / reach
    bar = next((m for m in (1000, 500, 200, 100, 50, 20, 10) if m * scale <= SKETCH_HALF), 10)
    return Sketch(SKETCH_HALF * 2, radius * scale, None if dx is None else dx * scale,
                  None if dy is None else -dy * scale, (accuracy or 0) * scale, bar, bar * scale)


def _metres(value: float) -> int:
    return int(round(value))


def record_evidence(session: Session, attendance_id: int) -> Evidence:
    att = session.get(Attendance, attendance_id)
    out = Evidence(attendance_id)
    if att is None:
        return out
    point = session.get(PatrolPoint, att.point_id) if att.point_id else None
    flags = att.flag_list
    scans = session.scalars(select(ScanRecord).where(ScanRecord.attendance_id == attendance_id,
                                                     ScanRecord.action.in_(ACCEPTED)).order_by(ScanRecord.scanned_at)).all()
    if point is not None:
        out.radius_m = point.radius_m
        if point.lat is not None and point.lon is not None:
            out.amap_url = amap_marker_url(point.lat, point.lon, f"{point.code} {point.name}")
    for s in scans:
        where = session.get(PatrolPoint, s.point_id) if s.point_id else point
        out.scans.append(ScanFact(s.action, _utc(s.scanned_at), s.lat, s.lon, s.accuracy_m, s.distance_m,
                                  _sketch(where, s.lat, s.lon, s.accuracy_m) if where is not None else None))
        action = _("签到") if s.action == "check_in" else _("签退")
        if "outside_geofence" in flags and s.distance_m is not None and where is not None \
                and s.distance_m > (where.radius_m or 0):
            acc = _("定位精度 %(a)d 米", a=_metres(s.accuracy_m)) if s.accuracy_m is not None else _("定位精度未知")
            out.reasons.append(_("%(what)s时距点位 %(d)d 米，%(acc)s（范围 %(r)d 米）", what=action,
                                 d=_metres(s.distance_m), acc=acc, r=where.radius_m or 0))
        if "no_location" in flags and s.lat is None and where is not None and where.lat is not None:
            out.reasons.append(_("%(what)s时手机没有提供位置", what=action))
        if "shared_device" in flags and s.device_id is not None:
            day_start = _utc(s.scanned_at).astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
            others = session.execute(
                select(Volunteer.name, ScanRecord.scanned_at).join(Volunteer, Volunteer.id == ScanRecord.volunteer_id)
                .where(ScanRecord.device_id == s.device_id, ScanRecord.volunteer_id != att.volunteer_id,
                       ScanRecord.action.in_(ACCEPTED), ScanRecord.scanned_at >= day_start,
                       ScanRecord.scanned_at < day_start + timedelta(days=1))
                .order_by(ScanRecord.scanned_at)).all()
            for name, at in others[:3]:
                out.reasons.append(_("同一部手机当天也为 %(n)s 扫码（%(t)s）", n=name,
                                     t=_utc(at).astimezone(SHANGHAI).strftime("%H:%M")))
        if "fast_travel" in flags and where is not None and where.lat is not None:
            prev = session.execute(
                select(ScanRecord.scanned_at, PatrolPoint.name, PatrolPoint.lat, PatrolPoint.lon)
                .join(PatrolPoint, PatrolPoint.id == ScanRecord.point_id)
                .where(ScanRecord.volunteer_id == att.volunteer_id, ScanRecord.action.in_(ACCEPTED),
                       ScanRecord.scanned_at < s.scanned_at, ScanRecord.id != s.id)
                .order_by(ScanRecord.scanned_at.desc()).limit(1)).first()
            if prev is not None and prev.lat is not None and prev.name != where.name:
                metres = distance_m(prev.lat, prev.lon, where.lat, where.lon)
                minutes = max((_utc(s.scanned_at) - _utc(prev.scanned_at)).total_seconds() / 60, 0.1)
                out.reasons.append(_("%(m)d 分钟内从“%(a)s”到“%(b)s”，相距 %(d)d 米，约 %(v)d 公里/小时",
                                     m=round(minutes), a=prev.name, b=where.name, d=_metres(metres),
                                     v=round(metres / 1000 / (minutes / 60))))
    if "no_location" in flags and not any(s.lat is None for s in scans) and att.source == "scan":
        out.reasons.append(_("扫码时手机没有提供位置"))
    simple = {"auto_closed": _("没有签退，按班次结束时间自动结束"), "daily_cap": _("当天累计超过每日上限，多出的时间未计入"),
              "uninsured": _("当天不在意外险保障名单中"), "unscheduled": _("计划外的记录（当天没有对应班次）"),
              "withdrawn": _("志愿者退出时自动结束")}
    out.reasons.extend(text for f, text in simple.items() if f in flags)
    return out
