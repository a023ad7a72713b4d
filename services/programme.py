"""Programme-year settings and the ledgers (insurance, equipment, budget, complaints, documents)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.programme import (BUDGET_LINES, LINE_EQUIPMENT, LINE_INSURANCE, LINE_WORK_FUND, BudgetLine, Complaint,
                              EquipmentDelivery, EquipmentIssue, Expenditure, InsuranceCover, InsurancePolicy,
                              ProgrammeDocument, ProgrammeYear)
from models.volunteer import Volunteer
from services.clock import Clock, system_clock
from services.errors import DomainError
from services.i18n import _
from services.lengths import check_length
from services.pii import (PersonalDataCipher, check_id_import_quota, near_identical_error, near_identical_ids,
                          normalise_id_number, record_export, same_name)
from services.phones import normalise_phone
from services.programme_year import default_due, programme_year_of, year_start
from services.spreadsheet import parse_date, read_sheet

DEFAULT_BUDGET = {LINE_WORK_FUND: Decimal("15000"), LINE_INSURANCE: Decimal("5000"), LINE_EQUIPMENT: Decimal("30000")}
LINE_NAMES = {LINE_WORK_FUND: "志愿者工作经费", LINE_INSURANCE: "平安志愿者意外险", LINE_EQUIPMENT: "装备制作"}


def programme_year(session: Session, year: int) -> ProgrammeYear:
    """The year's settings, created with the seed's defaults on first use (with its budget lines)."""
    row = session.get(ProgrammeYear, year)
    if row is None:
        due = default_due(year_start(session), year)
        row = ProgrammeYear(year=year, target_volunteers=500, target_hours=6.0, target_satisfaction=0.9,
                            target_work_fund=Decimal("15000"), target_insurance_per_person=Decimal("10"),
                            target_equipment_per_person=Decimal("60"), target_equipment_sets=500, target_complaints=0,
                            insurance_due=due, equipment_due=due, hours_rule="mean")
        session.add(row)
        for code in BUDGET_LINES:
            if session.scalar(select(BudgetLine.id).where(BudgetLine.year == year, BudgetLine.code == code)) is None:
                session.add(BudgetLine(year=year, code=code, name=LINE_NAMES[code], amount=DEFAULT_BUDGET[code]))
        session.commit()
    return row


def money(value: Any, label: str = "金额") -> Decimal:
    try:
        amount = Decimal(str(value).replace(",", "").replace("，", "").replace("元", "").strip())
    except (InvalidOperation, AttributeError):
        raise DomainError("bad_amount", _("%(l)s“%(v)s”不是有效的金额", l=label, v=value)) from None
    if amount < 0 or amount > Decimal("100000000"):
        raise DomainError("bad_amount", _("%(l)s超出范围", l=label))
    return amount.quantize(Decimal("0.01"))


def update_year(session: Session, year: int, **fields: Any) -> ProgrammeYear:
    row = programme_year(session, year)
    if "hours_rule" in fields and fields["hours_rule"] not in ("mean", "every"):
        raise DomainError("bad_rule", _("时长达标口径只能是“人均”或“每人”"))
    for key, value in fields.items():
        if not hasattr(row, key):
            raise KeyError(key)
        setattr(row, key, value)
    session.commit()
    return row


def set_budget(session: Session, year: int, code: str, amount: Decimal) -> None:
    programme_year(session, year)
    line = session.scalar(select(BudgetLine).where(BudgetLine.year == year, BudgetLine.code == code))
    if line is None:
        raise DomainError("not_found", _("预算科目不存在"))
    line.amount = amount
    session.commit()


def add_expenditure(session: Session, *, year: int, line: str, spent_on: date, amount: Decimal, description: str,
                    payee: str | None = None, voucher_no: str | None = None, by: str | None = None) -> Expenditure:
    if line not in BUDGET_LINES:
        raise DomainError("bad_line", _("未知的预算科目"))
    if not (description or "").strip():
        raise DomainError("required", _("请填写支出事项"))
    check_length(description.strip(), 255, _("事项"))
    check_length((payee or "").strip(), 128, _("收款方"))
    check_length((voucher_no or "").strip(), 64, _("凭证号"))
    if amount <= 0:
        raise DomainError("bad_amount", _("金额必须大于 0"))
    if programme_year_of(session, spent_on) != year:
        raise DomainError("wrong_year", _("支出日期不在 %(y)d 年度内", y=year))
    row = Expenditure(year=year, line=line, spent_on=spent_on, amount=amount, description=description.strip(),
                      payee=(payee or "").strip() or None, voucher_no=(voucher_no or "").strip() or None, created_by=by)
    session.add(row)
    session.commit()
    return row


@dataclass(frozen=True)
class BudgetRow:
    code: str
    name: str
    amount: Decimal
    spent: Decimal

    @property
    def execution_rate(self) -> float:
        return float(self.spent / self.amount) if self.amount else 0.0


def budget(session: Session, year: int) -> list[BudgetRow]:
    programme_year(session, year)
    spent = dict(session.execute(select(Expenditure.line, func.sum(Expenditure.amount))
                                 .where(Expenditure.year == year).group_by(Expenditure.line)).all())
    lines = session.scalars(select(BudgetLine).where(BudgetLine.year == year).order_by(BudgetLine.id))
    return [BudgetRow(b.code, b.name, Decimal(b.amount), Decimal(spent.get(b.code) or 0)) for b in lines]


# --- insurance -----------------------------------------------------------------------------------

INSURED_COLUMNS = {"phone": ("手机号", "手机", "手机号码"), "id_number": ("身份证号", "身份证号码", "证件号码"),
                   "name": ("姓名", "被保险人")}


def create_policy(session: Session, *, insurer: str, policy_no: str, cover_start: date, cover_end: date,
                  premium_per_person: Decimal) -> InsurancePolicy:
    if not (insurer or "").strip() or not (policy_no or "").strip():
        raise DomainError("required", _("请填写保险公司和保单号"))
    check_length(insurer.strip(), 128, _("保险公司"))
    check_length(policy_no.strip(), 64, _("保单号"))
    if cover_end < cover_start:
        raise DomainError("end_before_start", _("保障结束日期不能早于开始日期"))
    if session.scalar(select(InsurancePolicy.id).where(InsurancePolicy.policy_no == policy_no.strip())):
        raise DomainError("policy_taken", _("保单号“%(p)s”已存在", p=policy_no))
    row = InsurancePolicy(insurer=insurer.strip(), policy_no=policy_no.strip(), cover_start=cover_start,
                          cover_end=cover_end, premium_per_person=premium_per_person)
    session.add(row)
    session.commit()
    return row


def import_insured(session: Session, policy_id: int, data: bytes, filename: str, *, cipher: PersonalDataCipher,
                   actor: str = "system", can_see_id_numbers: bool = False,
                   id_import_daily_limit: int | None = None, clock: Clock = system_clock):
    """The insurer's list of insured people, matched by ID number or phone (all-or-nothing).

    Matching a typed ID number answers "is this someone's number?", so (docs/imports.md): for
    anyone who cannot already see full ID numbers an ID only matches together with the person's
    name; a miss says the same whichever field failed; a file with more than MAX_SAME_MASK
    numbers sharing one masked form is refused before any look-up; and every such import, good
    or bad, is recorded in the personal-data export log.
    """
    from services.imports import ImportReport, RowError, _file_error

    policy = session.get(InsurancePolicy, policy_id)
    if policy is None:
        raise DomainError("not_found", _("保单不存在"))
    report = ImportReport(kind="insured")
    try:
        sheet = read_sheet(data, filename, INSURED_COLUMNS, required=())
    except DomainError as exc:
        return _file_error("insured", exc)
    if "phone" not in sheet.columns and "id_number" not in sheet.columns:
        return _file_error("insured", DomainError("missing_columns", _("需要“手机号”或“身份证号”列")))
    report.total_rows = len(sheet.rows)
    parsed: list[tuple[Any, str | None, str | None]] = []
    for row in sheet.rows:
        try:
            idn = normalise_id_number(row.get("id_number")) if row.get("id_number") is not None else None
            phone = normalise_phone(row.get("phone")) if row.get("phone") is not None else None
        except DomainError as exc:
            report.errors.append(RowError(row.number, None, exc.code, exc.message))
            continue
        if idn is None and phone is None:
            report.errors.append(RowError(row.number, None, "required", _("请填写身份证号或手机号")))
            continue
        parsed.append((row, idn, phone))
    id_rows = [idn for _r, idn, _p in parsed if idn]
    near = near_identical_ids(id_rows)
    if near is not None:
        report.errors = [RowError(1, None, *_error_parts(near_identical_error(near)))]
    if id_rows and not can_see_id_numbers and id_import_daily_limit is not None:
        try:
            check_id_import_quota(session, actor=actor, limit=id_import_daily_limit, now=clock())
        except DomainError as exc:
            return _file_error("insured", exc)
    if id_rows:
        record_export(session, actor=actor, what="id_matching_import", record_count=len(id_rows),
                      detail=f"insured list; policy={policy_id}; file={filename[:100]}; rows={len(sheet.rows)}; "
                             f"refused={'near-identical' if near else ('errors' if report.errors else 'no')}")
        session.commit()
    if near is not None:
        return report
    matched: list[int] = []
    for row, idn, phone in parsed:
        by_id = by_phone = None
        if idn:
            vol = session.scalar(select(Volunteer).where(Volunteer.id_number_hash == cipher.blind_index(idn)))
            if vol is not None and (can_see_id_numbers or same_name(row.get("name"), vol.name)):
                by_id = vol.id
        if phone:
            by_phone = session.scalar(select(Volunteer.id).where(Volunteer.phone == phone))
        vid = by_id or by_phone
        if by_id and by_phone and by_id != by_phone:
            vid = None
        if vid is None:
            # One message whichever field failed: a miss must not tell an ID number from a name.
            report.errors.append(RowError(row.number, None, "unknown_volunteer",
                                          _("花名册中找不到与此行一致的志愿者（请核对姓名、身份证号、手机号）")))
        else:
            matched.append(vid)
    if not report.ok:
        return report
    existing = set(session.scalars(select(InsuranceCover.volunteer_id).where(InsuranceCover.policy_id == policy_id)))
    for vid in dict.fromkeys(matched):
        if vid in existing:
            report.unchanged += 1
        else:
            session.add(InsuranceCover(policy_id=policy_id, volunteer_id=vid))
            report.created += 1
    session.commit()
    return report


def _error_parts(exc: DomainError) -> tuple[str, str]:
    return exc.code, exc.message


def insured_on(session: Session, volunteer_id: int, day: date) -> bool:
    return session.scalar(select(InsuranceCover.id).join(InsurancePolicy, InsurancePolicy.id == InsuranceCover.policy_id)
                          .where(InsuranceCover.volunteer_id == volunteer_id, InsurancePolicy.cover_start <= day,
                                 InsurancePolicy.cover_end >= day).limit(1)) is not None


# --- equipment -----------------------------------------------------------------------------------

def add_delivery(session: Session, *, supplier: str, delivered_on: date, sets: int, unit_cost: Decimal,
                 passed_sets: int | None = None, note: str | None = None) -> EquipmentDelivery:
    if sets <= 0:
        raise DomainError("bad_number", _("套数必须大于 0"))
    check_length((supplier or "").strip(), 128, _("供应商"))
    check_length((note or "").strip(), 255, _("验收说明"))
    passed = sets if passed_sets is None else passed_sets
    if not 0 <= passed <= sets:
        raise DomainError("bad_number", _("验收合格套数应在 0 到 %(n)d 之间", n=sets))
    row = EquipmentDelivery(supplier=(supplier or "").strip() or _("未填写"), delivered_on=delivered_on, sets=sets,
                            unit_cost=unit_cost, passed_sets=passed, inspection_note=(note or "").strip() or None)
    session.add(row)
    session.commit()
    return row


def issue_equipment(session: Session, volunteer_id: int, issued_on: date, kit: str = "马甲套装") -> EquipmentIssue:
    if session.get(Volunteer, volunteer_id) is None:
        raise DomainError("not_found", _("志愿者不存在"))
    row = EquipmentIssue(volunteer_id=volunteer_id, issued_on=issued_on, kit=kit or "马甲套装")
    session.add(row)
    session.commit()
    return row


ISSUE_COLUMNS = {"phone": ("手机号", "手机"), "issued_on": ("发放日期", "日期", "date"), "kit": ("装备", "物品")}


def import_issues(session: Session, data: bytes, filename: str):
    """Equipment hand-outs from a signed list: phone, date, kit (all-or-nothing)."""
    from services.imports import ImportReport, RowError, _file_error

    report = ImportReport(kind="equipment_issues")
    try:
        sheet = read_sheet(data, filename, ISSUE_COLUMNS, required=("phone", "issued_on"))
    except DomainError as exc:
        return _file_error("equipment_issues", exc)
    report.total_rows = len(sheet.rows)
    rows = []
    for row in sheet.rows:
        try:
            vid = session.scalar(select(Volunteer.id).where(Volunteer.phone == normalise_phone(row.get("phone"))))
            if vid is None:
                raise DomainError("unknown_volunteer", _("花名册中没有这个手机号"))
            rows.append((vid, parse_date(row.get("issued_on")), check_length(row.text("kit"), 64, _("装备")) or "马甲套装"))
        except DomainError as exc:
            report.errors.append(RowError(row.number, None, exc.code, exc.message))
    if not report.ok:
        return report
    for vid, day, kit in rows:
        exists = session.scalar(select(EquipmentIssue.id).where(EquipmentIssue.volunteer_id == vid,
                                                                EquipmentIssue.issued_on == day, EquipmentIssue.kit == kit))
        if exists:
            report.unchanged += 1
        else:
            session.add(EquipmentIssue(volunteer_id=vid, issued_on=day, kit=kit))
            report.created += 1
    session.commit()
    return report


# --- complaints and documents ------------------------------------------------------------------------

def add_complaint(session: Session, *, received_on: date, source: str, description: str,
                  volunteer_id: int | None = None, shift_id: int | None = None, point_id: int | None = None,
                  finding: str | None = None, resolution: str | None = None, by: str | None = None) -> Complaint:
    if not (description or "").strip() or not (source or "").strip():
        raise DomainError("required", _("请填写投诉来源和内容"))
    check_length(source.strip(), 64, _("来源"))
    row = Complaint(received_on=received_on, source=source.strip(), description=description.strip(),
                    volunteer_id=volunteer_id, shift_id=shift_id, point_id=point_id, finding=finding,
                    resolution=resolution, status="closed" if resolution else "open", created_by=by)
    session.add(row)
    session.commit()
    return row


def close_complaint(session: Session, complaint_id: int, *, finding: str, resolution: str) -> None:
    row = session.get(Complaint, complaint_id)
    if row is None:
        raise DomainError("not_found", _("投诉记录不存在"))
    if not (resolution or "").strip():
        raise DomainError("required", _("请填写处理结果"))
    row.finding, row.resolution, row.status = finding, resolution, "closed"
    session.commit()


# Uploaded documents are served with their own type only when it is one of these (a browser will
# not run them as a page); anything else, text/html and scripts included, is application/octet-stream.
DOCUMENT_TYPES = frozenset({
    "application/pdf", "image/png", "image/jpeg",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/wps-office.doc", "application/wps-office.xls", "application/wps-office.docx",
    "application/wps-office.xlsx",
})


def document_type(content_type: str | None) -> str:
    """The type an uploaded document is stored and served with: the uploader's own only if allowed."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value if value in DOCUMENT_TYPES else "application/octet-stream"


def add_document(session: Session, *, year: int, kind: str, title: str, filename: str | None,
                 content_type: str | None, content: bytes | None, by: str | None) -> ProgrammeDocument:
    if kind not in ("rule", "plan", "meeting", "other"):
        raise DomainError("bad_kind", _("未知的文件类别"))
    if not (title or "").strip():
        raise DomainError("required", _("请填写文件标题"))
    check_length(title.strip(), 255, _("标题"))
    check_length(filename, 255, _("文件名"))
    content_type = document_type(content_type) if content is not None else None
    row = ProgrammeDocument(year=year, kind=kind, title=title.strip(), filename=filename, content_type=content_type,
                            content=content, uploaded_by=by)
    session.add(row)
    session.commit()
    return row


EXPENDITURE_COLUMNS = {"spent_on": ("日期", "支出日期", "date"), "line": ("科目", "预算科目", "line"),
                       "amount": ("金额", "金额（元）", "amount"), "description": ("事项", "摘要", "description"),
                       "payee": ("收款方", "payee"), "voucher_no": ("凭证号", "voucher")}
LINE_ALIASES = {"work_fund": LINE_WORK_FUND, "志愿者工作经费": LINE_WORK_FUND, "工作经费": LINE_WORK_FUND,
                "insurance": LINE_INSURANCE, "平安志愿者意外险": LINE_INSURANCE, "意外险": LINE_INSURANCE, "保险": LINE_INSURANCE,
                "equipment": LINE_EQUIPMENT, "装备制作": LINE_EQUIPMENT, "装备": LINE_EQUIPMENT}


def import_expenditures(session: Session, year: int, data: bytes, filename: str, *, by: str | None = None):
    """Expenditure entries from the finance office's spreadsheet (all-or-nothing; same row twice is skipped)."""
    from services.imports import ImportReport, RowError, _file_error

    report = ImportReport(kind="expenditures")
    try:
        sheet = read_sheet(data, filename, EXPENDITURE_COLUMNS, required=("spent_on", "line", "amount", "description"))
    except DomainError as exc:
        return _file_error("expenditures", exc)
    report.total_rows = len(sheet.rows)
    parsed = []
    for row in sheet.rows:
        try:
            day = parse_date(row.get("spent_on"))
            if programme_year_of(session, day) != year:
                raise DomainError("wrong_year", _("支出日期不在 %(y)d 年度内", y=year))
            line = LINE_ALIASES.get((row.text("line") or "").strip())
            if line is None:
                raise DomainError("bad_line", _("未知的预算科目“%(l)s”", l=row.text("line") or ""))
            amount = money(row.get("amount"))
            if amount <= 0:
                raise DomainError("bad_amount", _("金额必须大于 0"))
            if not row.text("description"):
                raise DomainError("required", _("请填写支出事项"))
            parsed.append((day, line, amount, check_length(row.text("description"), 255, _("事项")),
                           check_length(row.text("payee"), 128, _("收款方")),
                           check_length(row.text("voucher_no"), 64, _("凭证号"))))
        except DomainError as exc:
            report.errors.append(RowError(row.number, None, exc.code, exc.message))
    if not report.ok:
        return report
    for day, line, amount, description, payee, voucher in parsed:
        exists = session.scalar(select(Expenditure.id).where(Expenditure.year == year, Expenditure.spent_on == day,
                                                             Expenditure.line == line, Expenditure.amount == amount,
                                                             Expenditure.description == description))
        if exists:
            report.unchanged += 1
            continue
        session.add(Expenditure(year=year, line=line, spent_on=day, amount=amount, description=description,
                                payee=payee, voucher_no=voucher, created_by=by))
        report.created += 1
    session.commit()
    return report


DELIVERY_COLUMNS = {"supplier": ("供应商", "厂家", "supplier"), "delivered_on": ("到货日期", "日期", "delivered_on"),
                    "sets": ("套数", "数量", "sets"), "unit_cost": ("单价", "单价（元）", "unit_cost"),
                    "passed_sets": ("验收合格", "合格套数", "passed_sets"), "note": ("验收说明", "备注", "note")}
COMPLAINT_COLUMNS = {"received_on": ("收到日期", "日期", "received_on"), "source": ("来源", "source"),
                     "description": ("内容", "投诉内容", "description"), "volunteer": ("涉及志愿者", "手机号", "马甲编号", "volunteer"),
                     "finding": ("调查结论", "finding"), "resolution": ("处理结果", "resolution")}


def _whole(value: Any, label: str) -> int:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise DomainError("bad_number", _("%(l)s“%(v)s”不是整数", l=label, v=value)) from None
    if not number.is_integer() or number < 0:
        raise DomainError("bad_number", _("%(l)s“%(v)s”不是整数", l=label, v=value))
    return int(number)


def import_deliveries(session: Session, data: bytes, filename: str):
    """Equipment deliveries from the supplier's delivery notes (all-or-nothing; a repeat is skipped)."""
    from services.imports import ImportReport, RowError, _file_error

    report = ImportReport(kind="deliveries")
    try:
        sheet = read_sheet(data, filename, DELIVERY_COLUMNS, required=("delivered_on", "sets", "unit_cost"))
    except DomainError as exc:
        return _file_error("deliveries", exc)
    report.total_rows = len(sheet.rows)
    parsed = []
    for row in sheet.rows:
        try:
            sets = _whole(row.get("sets"), _("套数"))
            passed = _whole(row.get("passed_sets"), _("验收合格")) if row.get("passed_sets") is not None else sets
            if sets <= 0 or passed > sets:
                raise DomainError("bad_number", _("验收合格套数应在 0 到 %(n)d 之间", n=sets))
            parsed.append((check_length(row.text("supplier"), 128, _("供应商")) or _("未填写"),
                           parse_date(row.get("delivered_on")), sets, money(row.get("unit_cost"), _("单价")), passed,
                           check_length(row.text("note"), 255, _("验收说明"))))
        except DomainError as exc:
            report.errors.append(RowError(row.number, None, exc.code, exc.message))
    if not report.ok:
        return report
    for supplier, day, sets, cost, passed, note in parsed:
        if session.scalar(select(EquipmentDelivery.id).where(EquipmentDelivery.delivered_on == day,
                                                             EquipmentDelivery.supplier == supplier,
                                                             EquipmentDelivery.sets == sets)):
            report.unchanged += 1
            continue
        session.add(EquipmentDelivery(supplier=supplier, delivered_on=day, sets=sets, unit_cost=cost, passed_sets=passed,
                                      inspection_note=note))
        report.created += 1
    session.commit()
    return report


def import_complaints(session: Session, data: bytes, filename: str, *, by: str | None = None):
    """Complaints from a register kept in a spreadsheet (all-or-nothing; a repeat is skipped)."""
    from services.imports import ImportReport, RowError, _file_error
    from services.review import find_volunteer

    report = ImportReport(kind="complaints")
    try:
        sheet = read_sheet(data, filename, COMPLAINT_COLUMNS, required=("received_on", "source", "description"))
    except DomainError as exc:
        return _file_error("complaints", exc)
    report.total_rows = len(sheet.rows)
    parsed = []
    for row in sheet.rows:
        try:
            if not row.text("source") or not row.text("description"):
                raise DomainError("required", _("请填写投诉来源和内容"))
            check_length(row.text("source"), 64, _("来源"))
            vol_id = find_volunteer(session, row.text("volunteer")).id if row.text("volunteer") else None
            parsed.append((parse_date(row.get("received_on")), row.text("source"), row.text("description"), vol_id,
                           row.text("finding"), row.text("resolution")))
        except DomainError as exc:
            report.errors.append(RowError(row.number, None, exc.code, exc.message))
    if not report.ok:
        return report
    for day, source, description, vol_id, finding, resolution in parsed:
        if session.scalar(select(Complaint.id).where(Complaint.received_on == day, Complaint.source == source,
                                                     Complaint.description == description)):
            report.unchanged += 1
            continue
        session.add(Complaint(received_on=day, source=source, description=description, volunteer_id=vol_id,
                              finding=finding, resolution=resolution, status="closed" if resolution else "open",
                              created_by=by))
        report.created += 1
    session.commit()
    return report
