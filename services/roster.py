"""The roster: listing and exporting volunteers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.volunteer import Volunteer
from services.i18n import _
from services.pii import PersonalDataCipher, record_export
from services.spreadsheet import append_row, new_workbook, workbook_bytes, workbook_to_csv


@dataclass(frozen=True)
class RosterExport:
    content: bytes
    rows: int
    includes_id_numbers: bool


def export_roster(session: Session, *, cipher: PersonalDataCipher, actor: str,
                  include_id_numbers: bool = False, team: str | None = None, fmt: str = "xlsx") -> RosterExport:
    """The roster as `.xlsx`, in the import's own column layout (so it can be edited and re-imported).

    ID numbers are masked unless `include_id_numbers` (e.g. the insurer's list); such an export is
    recorded with who asked for it, in the same transaction.
    """
    stmt = (select(Volunteer.name, Volunteer.phone, Volunteer.team, Volunteer.vest_no, Volunteer.id_number_enc,
                   Volunteer.id_number_masked, Volunteer.joined_on, Volunteer.status, Volunteer.withdrawn_on)
            .order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id).execution_options(yield_per=2000))
    if team:
        stmt = stmt.where(Volunteer.team == team)
    wb = new_workbook(_("志愿者"))
    ws = wb.active
    append_row(ws, [_("姓名"), _("手机号"), _("所属居委"), _("马甲编号"), _("身份证号"), _("入队日期"),
               _("状态"), _("退出日期")])
    count = 0
    active, withdrawn = _("在册"), _("已退出")
    for name, phone, team_name, vest_no, id_enc, id_masked, joined_on, status, withdrawn_on in session.execute(stmt):
        id_cell = cipher.decrypt(id_enc) if include_id_numbers and id_enc is not None else (id_masked or "")
        append_row(ws, [name, phone, team_name or "", vest_no or "", id_cell, joined_on,
                        active if status == "active" else withdrawn, withdrawn_on or ""])
        count += 1
    for cell in ws["B"] + ws["E"]:
        cell.number_format = "@"  # keep phones and ID numbers as text in Excel
    content = workbook_to_csv(wb) if fmt == "csv" else workbook_bytes(wb)
    if include_id_numbers:
        record_export(session, actor=actor, what="roster_with_id_numbers", record_count=count,
                      detail=f"team={team or '*'}; date={date.today().isoformat()}")
        session.commit()
    return RosterExport(content, count, include_id_numbers)
