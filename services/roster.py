"""The roster: listing and exporting volunteers."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.volunteer import Volunteer
from services.i18n import _
from services.pii import PersonalDataCipher, record_export


@dataclass(frozen=True)
class RosterExport:
    content: bytes
    rows: int
    includes_id_numbers: bool


def export_roster(session: Session, *, cipher: PersonalDataCipher, actor: str,
                  include_id_numbers: bool = False, team: str | None = None) -> RosterExport:
    """The roster as `.xlsx`, in the import's own column layout (so it can be edited and re-imported).

    ID numbers are masked unless `include_id_numbers` (e.g. the insurer's list); such an export is
    recorded with who asked for it, in the same transaction.
    """
    stmt = (select(Volunteer.name, Volunteer.phone, Volunteer.team, Volunteer.vest_no, Volunteer.id_number_enc,
                   Volunteer.id_number_masked, Volunteer.joined_on, Volunteer.status, Volunteer.withdrawn_on)
            .order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id).execution_options(yield_per=2000))
    if team:
        stmt = stmt.where(Volunteer.team == team)
    # Streamed (write-only workbook, plain rows in batches): a district's 50,000 volunteers as ORM
    # objects in an in-memory workbook took longer than a request may.
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("志愿者"))
    ws.append([_("姓名"), _("手机号"), _("所属居委"), _("马甲编号"), _("身份证号"), _("入队日期"),
               _("状态"), _("退出日期")])

    def text_cell(value: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = "@"  # keep phones and ID numbers as text in Excel
        return cell

    active, withdrawn = _("在册"), _("已退出")
    count = 0
    for name, phone, team_name, vest_no, id_enc, id_masked, joined_on, status, withdrawn_on in session.execute(stmt):
        id_cell = cipher.decrypt(id_enc) if include_id_numbers and id_enc is not None else (id_masked or "")
        ws.append([name, text_cell(phone), team_name or "", vest_no or "", text_cell(id_cell), joined_on,
                   active if status == "active" else withdrawn, withdrawn_on or ""])
        count += 1
    buf = io.BytesIO()
    wb.save(buf)
    if include_id_numbers:
        record_export(session, actor=actor, what="roster_with_id_numbers", record_count=count,
                      detail=f"team={team or '*'}; date={date.today().isoformat()}")
        session.commit()
    return RosterExport(buf.getvalue(), count, include_id_numbers)
