"""All-or-nothing spreadsheet imports: the roster, patrol points and key-date shifts.

Every row is validated before anything is written; one bad row means nothing is imported and the
report lists every bad row with its spreadsheet row number. A blank cell never erases a stored
value, and a volunteer missing from the file is never withdrawn: a partial sheet from one 居委
must not damage the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.event import Event, Shift
from models.point import PatrolPoint
from models.volunteer import Volunteer
from services.clock import Clock, from_local, local_date, system_clock
from services.coords import WGS84, to_wgs84
from services.errors import DomainError
from services.i18n import _
from services.phones import normalise_phone
from services.pii import (DEFAULT_ID_IMPORT_DAILY_LIMIT, ID_MATCHING_IMPORT, PersonalDataCipher,
                          check_id_import_quota, mask_id_number, near_identical_error, near_identical_ids,
                          normalise_id_number, record_export)
from services.spreadsheet import SheetRow, parse_date, parse_local_datetime, read_sheet

VOLUNTEER_COLUMNS = {
    "name": ("姓名", "名字"),
    "phone": ("手机号", "手机", "手机号码", "联系电话", "电话", "mobile"),
    "team": ("所属居委", "居委", "所属居委会", "居委会", "队伍", "小队"),
    "vest_no": ("马甲编号", "马甲号", "编号", "vest", "vestno"),
    "id_number": ("身份证号", "身份证号码", "身份证", "idnumber", "idcard"),
    "joined_on": ("入队日期", "加入日期", "joined"),
}
POINT_COLUMNS = {
    "code": ("点位编号", "点位代码", "编号", "代码"),
    "name": ("点位名称", "名称", "点位"),
    "lat": ("纬度", "latitude"),
    "lon": ("经度", "longitude", "lng"),
    "radius_m": ("半径", "半径(米)", "半径米", "radius"),
    "address": ("地址",),
    "coords": ("坐标系", "coordinates", "crs"),
}
SHIFT_COLUMNS = {
    "event": ("活动", "活动名称", "节点", "重大节点"),
    "point_code": ("点位编号", "点位代码", "point"),
    "start": ("开始时间", "开始", "starts", "startsat"),
    "end": ("结束时间", "结束", "ends", "endsat"),
    "capacity": ("人数", "容量", "名额"),
    "note": ("备注",),
}


@dataclass
class RowError:
    row: int
    column: str | None
    code: str
    message: str


@dataclass
class ImportReport:
    kind: str
    total_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Rows left alone for a reason worth telling (not errors): e.g. a record already rejected.
    notices: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.ok:
            text = _("导入成功：共 %(t)d 行，新增 %(c)d，更新 %(u)d，未变 %(n)d",
                     t=self.total_rows, c=self.created, u=self.updated, n=self.unchanged)
            if self.skipped:
                text += _("，跳过空行 %(s)d", s=self.skipped)
            if self.notices:
                text += _("，另有 %(n)d 行见下方说明", n=len(self.notices))
            return text
        return _("导入失败，未写入任何数据：%(n)d 处错误", n=len(self.errors))

    def lines(self) -> list[str]:
        return [_("第 %(row)d 行%(col)s：%(msg)s", row=e.row,
                  col=f"（{e.column}）" if e.column else "", msg=e.message) for e in self.errors]

    def notice_lines(self) -> list[str]:
        return [_("第 %(row)d 行%(col)s：%(msg)s", row=e.row,
                  col=f"（{e.column}）" if e.column else "", msg=e.message) for e in self.notices]


class _Collector:
    """Runs each row's checks and collects every error instead of stopping at the first."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report

    def check(self, row: SheetRow, column: str | None, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except DomainError as exc:
            self.report.errors.append(RowError(row.number, column, exc.code, exc.message))
            return None

    def fail(self, row: SheetRow, column: str | None, code: str, message: str) -> None:
        self.report.errors.append(RowError(row.number, column, code, message))


def _file_error(kind: str, exc: DomainError) -> ImportReport:
    report = ImportReport(kind=kind)
    report.errors.append(RowError(1, None, exc.code, exc.message))
    return report


def _set_if_given(obj: Any, attr: str, value: Any) -> bool:
    """Assign a non-blank value; report whether anything changed."""
    if value is None or getattr(obj, attr) == value:
        return False
    setattr(obj, attr, value)
    return True


def _required_text(row: SheetRow, key: str, label: str, max_len: int) -> str:
    value = row.text(key)
    if not value:
        raise DomainError("required", _("%(label)s不能为空", label=label))
    if len(value) > max_len:
        raise DomainError("too_long", _("%(label)s过长（最多 %(n)d 个字）", label=label, n=max_len))
    return value


def _optional_text(row: SheetRow, key: str, label: str, max_len: int) -> str | None:
    value = row.text(key)
    if value and len(value) > max_len:
        raise DomainError("too_long", _("%(label)s过长（最多 %(n)d 个字）", label=label, n=max_len))
    return value


# --- volunteers ---------------------------------------------------------------------------------

def import_volunteers(session: Session, data: bytes, filename: str, *, cipher: PersonalDataCipher,
                      clock: Clock = system_clock, zone: ZoneInfo | None = None,
                      commit: bool = True, actor: str = "system", can_see_id_numbers: bool = False,
                      id_import_daily_limit: int = DEFAULT_ID_IMPORT_DAILY_LIMIT) -> ImportReport:
    """The roster, matched by phone. ID numbers are unique (one person, one number), and comparing a
    typed number with everyone's answers "is this someone's number?". So for anyone who cannot
    already see full ID numbers (`can_see_id_numbers=False`, i.e. not an admin) nothing in the
    outcome depends on another volunteer's number: a number registered to someone else is stored
    without its look-up hash and flagged "身份证号需管理员核对" (visible to admins only), and a row
    with an ID number for an existing volunteer is always counted as updated. Only an admin gets the
    precise "taken" error. Such a person may also run only a few ID-matching imports a day; a file
    with near-identical numbers is refused; every ID-matching import is logged as personal-data
    access."""
    report = ImportReport(kind="volunteers")
    try:
        sheet = read_sheet(data, filename, VOLUNTEER_COLUMNS, required=("name", "phone"))
    except DomainError as exc:
        return _file_error("volunteers", exc)
    report.total_rows = len(sheet.rows)
    now = clock()
    today = local_date(now, zone) if zone else local_date(now)
    c = _Collector(report)

    parsed: list[dict[str, Any]] = []
    seen_phone: dict[str, int] = {}
    seen_id: dict[str, int] = {}
    for row in sheet.rows:
        rec: dict[str, Any] = {"row": row}
        rec["name"] = c.check(row, "姓名", lambda: _required_text(row, "name", _("姓名"), 64))
        rec["phone"] = c.check(row, "手机号", lambda: normalise_phone(row.get("phone")))
        rec["team"] = c.check(row, "所属居委", lambda: _optional_text(row, "team", _("所属居委"), 64))
        rec["vest_no"] = c.check(row, "马甲编号", lambda: _optional_text(row, "vest_no", _("马甲编号"), 32))
        rec["id_number"] = None
        if row.get("id_number") is not None:
            rec["id_number"] = c.check(row, "身份证号", lambda: normalise_id_number(row.get("id_number")))
        rec["joined_on"] = None
        if row.get("joined_on") is not None:
            rec["joined_on"] = c.check(row, "入队日期", lambda: parse_date(row.get("joined_on")))
        phone = rec["phone"]
        if phone:
            if phone in seen_phone:
                c.fail(row, "手机号", "duplicate_in_file",
                       _("手机号与第 %(r)d 行重复", r=seen_phone[phone]))
            seen_phone.setdefault(phone, row.number)
        if rec["id_number"]:
            if rec["id_number"] in seen_id:
                c.fail(row, "身份证号", "duplicate_in_file",
                       _("身份证号与第 %(r)d 行重复", r=seen_id[rec["id_number"]]))
            seen_id.setdefault(rec["id_number"], row.number)
        parsed.append(rec)

    existing = {v.phone: v for v in session.scalars(
        select(Volunteer).where(Volunteer.phone.in_(list(seen_phone))))} if seen_phone else {}
    id_numbers = [rec["id_number"] for rec in parsed if rec["id_number"]]
    near = near_identical_ids(id_numbers)
    if id_numbers:
        if not can_see_id_numbers:
            try:
                check_id_import_quota(session, actor=actor, limit=id_import_daily_limit, now=now,
                                      zone=zone)
            except DomainError as exc:
                return _file_error("volunteers", exc)
        record_export(session, actor=actor, what=ID_MATCHING_IMPORT, record_count=len(id_numbers),
                      detail=f"roster; file={filename[:100]}; rows={len(sheet.rows)}; "
                             f"refused={'near-identical' if near else 'no'}", at=now)
        if commit:
            session.commit()
    if near is not None:
        return _file_error("volunteers", near_identical_error(near))
    hashes = {rec["row"].number: cipher.blind_index(rec["id_number"])
              for rec in parsed if rec["id_number"]}
    held: set[int] = set()   # rows whose number belongs to someone else, left for an admin
    if hashes:
        owners = dict(session.execute(select(Volunteer.id_number_hash, Volunteer.phone)
                                      .where(Volunteer.id_number_hash.in_(list(hashes.values())))).all())
        for rec in parsed:
            h = hashes.get(rec["row"].number)
            if h and h in owners and owners[h] != rec["phone"]:
                if can_see_id_numbers:
                    c.fail(rec["row"], "身份证号", "id_number_taken",
                           _("该身份证号已登记在另一名志愿者名下，请核对"))
                else:
                    held.add(rec["row"].number)

    if not report.ok:
        return report

    for rec in parsed:
        vol = existing.get(rec["phone"])
        id_fields: dict[str, Any] = {}
        number = rec["row"].number
        if rec["id_number"]:
            h = hashes[number]
            if number in held:
                id_fields = {"id_number_enc": cipher.encrypt(rec["id_number"]), "id_number_hash": None,
                             "id_number_masked": mask_id_number(rec["id_number"]), "id_number_check": True}
            elif vol is None or vol.id_number_hash != h:
                id_fields = {"id_number_enc": cipher.encrypt(rec["id_number"]), "id_number_hash": h,
                             "id_number_masked": mask_id_number(rec["id_number"]), "id_number_check": False}
        if vol is None:
            vol = Volunteer(name=rec["name"], phone=rec["phone"], team=rec["team"],
                            vest_no=rec["vest_no"], joined_on=rec["joined_on"] or today, **id_fields)
            session.add(vol)
            existing[vol.phone] = vol
            report.created += 1
            continue
        changed = False
        for attr in ("name", "team", "vest_no", "joined_on"):
            changed |= _set_if_given(vol, attr, rec[attr])
        if id_fields.get("id_number_hash") is None and id_fields:
            vol.id_number_hash = None  # a blank is a value here: the held number has no hash
        for attr, value in id_fields.items():
            changed |= _set_if_given(vol, attr, value)
        # Whether a typed number equals the stored one must not show in the counts either.
        if changed or (rec["id_number"] and not can_see_id_numbers):
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    if commit:
        session.commit()
    return report


def confirm_held_id_number(session: Session, volunteer_id: int, *, cipher: PersonalDataCipher) -> None:
    """An admin checks a number a non-admin imported that was already someone else's: if it is
    still registered to another volunteer the admin is told (they may see full numbers); otherwise
    its look-up hash is stored and the flag cleared."""
    vol = session.get(Volunteer, volunteer_id)
    if vol is None or not vol.id_number_check or vol.id_number_enc is None:
        raise DomainError("not_found", _("没有需要核对的身份证号"))
    h = cipher.blind_index(cipher.decrypt(vol.id_number_enc))
    other = session.scalar(select(Volunteer).where(Volunteer.id_number_hash == h, Volunteer.id != vol.id))
    if other is not None:
        raise DomainError("id_number_taken", _("该身份证号已登记在志愿者 %(name)s（%(phone)s）名下，请核对后修改其中一人",
                                               name=other.name, phone=other.phone))
    vol.id_number_hash = h
    vol.id_number_check = False
    session.commit()


# --- patrol points ------------------------------------------------------------------------------

def _coordinate(row: SheetRow, key: str, low: float, high: float, label: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise DomainError("bad_number", _("%(label)s“%(v)s”不是数字", label=label, v=value)) from None
    if not low <= number <= high:
        raise DomainError("out_of_range", _("%(label)s %(v)s 超出范围", label=label, v=number))
    return number


def _positive_int(row: SheetRow, key: str, label: str, high: int) -> int | None:
    value = row.get(key)
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise DomainError("bad_number", _("%(label)s“%(v)s”不是数字", label=label, v=value)) from None
    if not number.is_integer() or not 1 <= number <= high:
        raise DomainError("out_of_range", _("%(label)s应为 1 到 %(h)d 的整数", label=label, h=high))
    return int(number)


def import_points(session: Session, data: bytes, filename: str, *, coords: str = WGS84,
                  commit: bool = True) -> ImportReport:
    """Import patrol points; `coords` is the default system for rows without a `coords` cell."""
    report = ImportReport(kind="points")
    try:
        sheet = read_sheet(data, filename, POINT_COLUMNS, required=("code", "name"))
    except DomainError as exc:
        return _file_error("points", exc)
    report.total_rows = len(sheet.rows)
    c = _Collector(report)
    parsed = []
    seen: dict[str, int] = {}
    for row in sheet.rows:
        rec: dict[str, Any] = {"row": row}
        rec["code"] = c.check(row, "点位编号", lambda: _required_text(row, "code", _("点位编号"), 32))
        rec["name"] = c.check(row, "点位名称", lambda: _required_text(row, "name", _("点位名称"), 128))
        rec["address"] = c.check(row, "地址", lambda: _optional_text(row, "address", _("地址"), 255))
        lat = c.check(row, "纬度", lambda: _coordinate(row, "lat", -90, 90, _("纬度")))
        lon = c.check(row, "经度", lambda: _coordinate(row, "lon", -180, 180, _("经度")))
        rec["radius_m"] = c.check(row, "半径", lambda: _positive_int(row, "radius_m", _("半径（米）"), 5000))
        system = (row.text("coords") or coords or WGS84).lower()
        rec["lat"] = rec["lon"] = None
        if (row.get("lat") is None) != (row.get("lon") is None):
            c.fail(row, "经度/纬度", "coords_incomplete", _("经度和纬度要么都填，要么都不填"))
        elif lat is not None and lon is not None:
            converted = c.check(row, "坐标系", lambda: to_wgs84(lat, lon, system))
            if converted:
                rec["lat"], rec["lon"] = round(converted[0], 7), round(converted[1], 7)
        if rec["code"]:
            if rec["code"] in seen:
                c.fail(row, "点位编号", "duplicate_in_file", _("点位编号与第 %(r)d 行重复", r=seen[rec["code"]]))
            seen.setdefault(rec["code"], row.number)
        parsed.append(rec)
    if not report.ok:
        return report

    existing = {p.code: p for p in session.scalars(select(PatrolPoint).where(PatrolPoint.code.in_(list(seen))))}
    for rec in parsed:
        point = existing.get(rec["code"])
        if point is None:
            session.add(PatrolPoint(code=rec["code"], name=rec["name"], address=rec["address"],
                                    lat=rec["lat"], lon=rec["lon"], radius_m=rec["radius_m"] or 150))
            report.created += 1
            continue
        changed = False
        for attr in ("name", "address", "lat", "lon", "radius_m"):
            changed |= _set_if_given(point, attr, rec[attr])
        report.updated += 1 if changed else 0
        report.unchanged += 0 if changed else 1
    session.flush()
    if commit:
        session.commit()
    return report


# --- shifts -------------------------------------------------------------------------------------

def import_shifts(session: Session, data: bytes, filename: str, *, zone: ZoneInfo | None = None,
                  commit: bool = True) -> ImportReport:
    """Import key-date shifts given in local time; an event named for the first time is created."""
    report = ImportReport(kind="shifts")
    try:
        sheet = read_sheet(data, filename, SHIFT_COLUMNS, required=("event", "point_code", "start", "end"))
    except DomainError as exc:
        return _file_error("shifts", exc)
    report.total_rows = len(sheet.rows)
    kwargs = {"zone": zone} if zone else {}
    c = _Collector(report)
    points = {p.code: p for p in session.scalars(select(PatrolPoint))}
    parsed = []
    seen: dict[tuple, int] = {}
    for row in sheet.rows:
        rec: dict[str, Any] = {"row": row}
        rec["event"] = c.check(row, "活动", lambda: _required_text(row, "event", _("活动名称"), 128))
        code = row.text("point_code")
        rec["point"] = points.get(code) if code else None
        if not code:
            c.fail(row, "点位编号", "required", _("点位编号不能为空"))
        elif rec["point"] is None:
            c.fail(row, "点位编号", "unknown_point", _("点位编号“%(c)s”不存在，请先导入点位", c=code))
        start = c.check(row, "开始时间", lambda: parse_local_datetime(row.get("start")))
        end = c.check(row, "结束时间", lambda: parse_local_datetime(row.get("end")))
        rec["capacity"] = c.check(row, "人数", lambda: _positive_int(row, "capacity", _("人数"), 1000))
        rec["note"] = c.check(row, "备注", lambda: _optional_text(row, "note", _("备注"), 255))
        rec["start"] = rec["end"] = None
        if start and end:
            if end <= start:
                c.fail(row, "结束时间", "end_before_start", _("结束时间必须晚于开始时间"))
            elif end - start > timedelta(hours=24):
                c.fail(row, "结束时间", "shift_too_long", _("一个班次不能超过 24 小时"))
            else:
                rec["start"], rec["end"] = from_local(start, **kwargs), from_local(end, **kwargs)
                rec["local_start"], rec["local_end"] = start, end
        if rec["event"] and rec["point"] and rec["start"]:
            key = (rec["event"], rec["point"].id, rec["start"])
            if key in seen:
                c.fail(row, None, "duplicate_in_file", _("与第 %(r)d 行是同一班次（活动、点位、开始时间相同）", r=seen[key]))
            seen.setdefault(key, row.number)
        parsed.append(rec)
    if not report.ok:
        return report

    events = {e.name: e for e in session.scalars(select(Event).where(Event.name.in_({r["event"] for r in parsed})))}
    for rec in parsed:
        day_from: date = rec["local_start"].date()
        day_to: date = rec["local_end"].date()
        event = events.get(rec["event"])
        if event is None:
            event = Event(name=rec["event"], starts_on=day_from, ends_on=day_to)
            session.add(event)
            session.flush()
            events[event.name] = event
        else:
            event.starts_on = min(event.starts_on, day_from)
            event.ends_on = max(event.ends_on, day_to)
        shift = session.scalar(select(Shift).where(Shift.event_id == event.id,
                                                   Shift.point_id == rec["point"].id,
                                                   Shift.starts_at == rec["start"]))
        if shift is None:
            session.add(Shift(event_id=event.id, point_id=rec["point"].id, starts_at=rec["start"],
                              ends_at=rec["end"], capacity=rec["capacity"] or 10, note=rec["note"]))
            session.flush()
            report.created += 1
            continue
        changed = _set_if_given(shift, "ends_at", rec["end"])
        changed |= _set_if_given(shift, "capacity", rec["capacity"])
        changed |= _set_if_given(shift, "note", rec["note"])
        report.updated += 1 if changed else 0
        report.unchanged += 0 if changed else 1
    session.flush()
    if commit:
        session.commit()
    return report



# --- historical attendance (paper sheets) -----------------------------------------------------

ATTENDANCE_COLUMNS = {
    "phone": ("手机号", "手机", "手机号码", "联系电话", "mobile"),
    "name": ("姓名",),
    "vest_no": ("马甲编号",),
    "point_code": ("点位编号", "点位代码", "point"),
    "event": ("活动", "活动名称", "节点"),
    "check_in": ("签到时间", "签到", "checkin", "checkinat"),
    "check_out": ("签退时间", "签退", "checkout", "checkoutat"),
    "note": ("备注",),
    "unscheduled": ("计划外", "计划外巡逻", "unscheduled", "offshift"),
}
FLAG_UNSCHEDULED = "unscheduled"
_YES = {"是", "y", "yes", "true", "1", "√", "✓"}
_NO = {"否", "n", "no", "false", "0"}


def _yes_no(row: SheetRow, key: str, label: str) -> bool:
    value = row.text(key)
    if value is None:
        return False
    if value.lower() in _YES:
        return True
    if value.lower() in _NO:
        return False
    raise DomainError("bad_yes_no", _("%(label)s只能填“是”或“否”", label=label))


def _paper_shift(session: Session, point_id: int | None, event_id: int | None, start, end, zone: ZoneInfo):
    """The shift a paper row belongs to, as a scan would credit it: of the shifts on that day at
    that point (or of the named campaign), the one the presence overlaps most.

    Returns (shift or None, whether that day has any such shift at all).
    """
    from datetime import datetime, time, timezone

    from models.event import Shift
    SH = Shift.__table__

    if point_id is None and event_id is None:
        return None, False
    day_from = datetime.combine(start.astimezone(zone).date(), time(), tzinfo=zone)
    day_to = datetime.combine(end.astimezone(zone).date() + timedelta(days=1), time(), tzinfo=zone)
    stmt = select(SH.c.id, SH.c.event_id, SH.c.starts_at, SH.c.ends_at).where(SH.c.starts_at < day_to,
                                                                                 SH.c.ends_at > day_from)
    stmt = stmt.where(SH.c.point_id == point_id) if point_id is not None else stmt.where(SH.c.event_id == event_id)
    rows = session.execute(stmt).all()

    def aware(v):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)

    best, best_overlap = None, timedelta(0)
    for r in sorted(rows, key=lambda r: (aware(r.starts_at), r.id)):
        overlap = min(end, aware(r.ends_at)) - max(start, aware(r.starts_at))
        if overlap > best_overlap:
            best, best_overlap = r, overlap
    return best, bool(rows)


def import_attendance(session: Session, data: bytes, filename: str, *, rules=None, actor: str = "",
                      commit: bool = True) -> ImportReport:
    """Import patrols recorded on paper (before the service, or on a night without phones).

    They count as `import`, kept apart from scan-verified time, and are credited like a scan: a row
    belongs to the shift of that day at that point (or of the named campaign) that it overlaps
    most, and earns only inside that shift's start–end, under the 12 h daily cap. A row on a day
    without any such shift (history from before the service) is imported as unscheduled, flagged;
    a row that misses every shift of its day is refused unless its `计划外` column says 是.
    Rows with neither time filled in (absent) are skipped; a row already imported is left
    unchanged, and so is a row whose record a coordinator rejected (reported, not an error), so a
    sheet can be imported again after fixing one row.
    """
    from models.attendance import (ATT_CLOSED, REVIEW_FLAGGED, REVIEW_NONE, REVIEW_REJECTED, SOURCE_IMPORT,
                                   Attendance)
    from services.checkin import ScanRules
    from services.credits import credit_days, recompute_days

    rules = rules or ScanRules()
    A = Attendance.__table__
    report = ImportReport(kind="attendance")
    try:
        sheet = read_sheet(data, filename, ATTENDANCE_COLUMNS, required=("phone", "check_in", "check_out"))
    except DomainError as exc:
        return _file_error("attendance", exc)
    if "point_code" not in sheet.columns and "event" not in sheet.columns:
        return _file_error("attendance", DomainError("missing_columns", _("缺少“点位编号”或“活动”列")))
    c = _Collector(report)
    points = {p.code: p for p in session.scalars(select(PatrolPoint))}
    events = {e.name: e for e in session.scalars(select(Event))}
    parsed = []
    skipped = 0
    for row in sheet.rows:
        if row.get("check_in") is None and row.get("check_out") is None:
            skipped += 1
            continue
        rec: dict[str, Any] = {"row": row}
        phone = c.check(row, "手机号", lambda: normalise_phone(row.get("phone")))
        rec["volunteer"] = session.scalar(select(Volunteer).where(Volunteer.phone == phone)) if phone else None
        if phone and rec["volunteer"] is None:
            c.fail(row, "手机号", "unknown_volunteer", _("花名册中没有手机号为 %(p)s 的志愿者", p=phone))
        start = c.check(row, "签到时间", lambda: parse_local_datetime(row.get("check_in")))
        end = c.check(row, "签退时间", lambda: parse_local_datetime(row.get("check_out")))
        code, event_name = row.text("point_code"), row.text("event")
        rec["point"] = points.get(code) if code else None
        rec["event_name"] = event_name
        if code and rec["point"] is None:
            c.fail(row, "点位编号", "unknown_point", _("点位编号“%(c)s”不存在", c=code))
        if not code and not event_name:
            c.fail(row, "点位编号/活动", "required", _("点位编号和活动至少填一项"))
        rec["note"] = c.check(row, "备注", lambda: _optional_text(row, "note", _("备注"), 500))
        unscheduled = c.check(row, "计划外", lambda: _yes_no(row, "unscheduled", _("计划外")))
        rec["start"] = rec["end"] = rec["shift"] = None
        if start and end:
            if end <= start:
                c.fail(row, "签退时间", "end_before_start", _("签退时间必须晚于签到时间"))
            elif end - start > timedelta(hours=24):
                c.fail(row, "签退时间", "too_long", _("一次签到不能超过 24 小时"))
            else:
                rec["start"], rec["end"] = from_local(start, rules.zone), from_local(end, rules.zone)
        if rec["start"] and (rec["point"] or (not code and event_name)):
            named = events.get(event_name) if event_name else None
            rec["shift"], day_has_shifts = _paper_shift(
                session, rec["point"].id if rec["point"] else None, named.id if named else None,
                rec["start"], rec["end"], rules.zone)
            if rec["shift"] is None and day_has_shifts and unscheduled is False:
                c.fail(row, "签到时间", "outside_shifts",
                       _("这一天该点位（或活动）有班次，但签到、签退时间与所有班次都不重叠；"
                         "如确为计划外巡逻，请在“计划外”列填“是”"))
        parsed.append(rec)
    # overlaps: within the file, and with records already stored (rejected ones included)
    by_volunteer: dict[int, list[dict]] = {}
    for rec in parsed:
        if rec.get("volunteer") is not None and rec["start"]:
            by_volunteer.setdefault(rec["volunteer"].id, []).append(rec)
    for vol_id, recs in by_volunteer.items():
        recs.sort(key=lambda r: r["start"])
        for prev, cur in zip(recs, recs[1:]):
            if cur["start"] < prev["end"]:
                c.fail(cur["row"], "签到时间", "overlap", _("与第 %(r)d 行的时间重叠", r=prev["row"].number))
        for rec in recs:
            clashes = session.execute(select(A.c.source, A.c.check_in_at, A.c.check_out_at, A.c.review_status).where(
                A.c.volunteer_id == vol_id, A.c.check_in_at < rec["end"],
                func.coalesce(A.c.check_out_at, A.c.check_in_at) > rec["start"])).all()
            if not clashes:
                continue
            same = [x for x in clashes if x.source == SOURCE_IMPORT and x.check_in_at == rec["start"]
                    and x.check_out_at == rec["end"]]
            live = [x for x in clashes if x.review_status != REVIEW_REJECTED]
            if same or not live:
                # Imported before, or the time was already judged: a rejected record stays rejected.
                rec["unchanged"] = True
                if (same or clashes)[0].review_status == REVIEW_REJECTED:
                    report.notices.append(RowError(rec["row"].number, "签到时间", "already_rejected",
                                                   _("已审核：不通过（平安办已驳回这条记录，不再重复导入）")))
            else:
                c.fail(rec["row"], "签到时间", "overlap", _("与该志愿者已有的签到记录时间重叠"))
    report.total_rows = len(sheet.rows)
    if not report.ok:
        return report

    conn = session.connection()
    touched: dict[int, set] = {}
    for rec in parsed:
        if rec.get("unchanged"):
            report.unchanged += 1
            continue
        vol, point, shift = rec["volunteer"], rec["point"], rec["shift"]
        event_id = shift.event_id if shift else None
        if event_id is None and rec["event_name"]:
            event = events.get(rec["event_name"])
            if event is None:
                local_day = rec["start"].astimezone(rules.zone).date()
                event = Event(name=rec["event_name"], starts_on=local_day, ends_on=local_day)
                session.add(event)
                session.flush()
                events[event.name] = event
            event_id = event.id
        flags = "" if shift else FLAG_UNSCHEDULED
        conn.execute(A.insert().values(
            volunteer_id=vol.id, event_id=event_id, shift_id=shift.id if shift else None,
            point_id=point.id if point else None, source=SOURCE_IMPORT, status=ATT_CLOSED,
            check_in_at=rec["start"], check_out_at=rec["end"], credited_minutes=0,
            work_date=rec["start"].astimezone(rules.zone).date(), review_status=REVIEW_FLAGGED if flags else REVIEW_NONE,
            flags=flags, walk_in=False, note=(rec["note"] or "") + (f" [{actor}]" if actor else "") or None))
        touched.setdefault(vol.id, set()).update(credit_days(rec["start"], rec["end"], shift.starts_at if shift else None,
                                                             shift.ends_at if shift else None, rules.zone))
        report.created += 1
    for vol_id, days in touched.items():
        recompute_days(conn, vol_id, days, cap_minutes=rules.daily_cap_minutes, zone=rules.zone)
    report.skipped = skipped
    session.flush()
    if commit:
        session.commit()
    return report
