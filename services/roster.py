"""The roster: listing and exporting volunteers."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import IO, Callable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.volunteer import Volunteer
from services.clock import local_date, system_clock
from services.i18n import _
from services.pii import PersonalDataCipher, record_export
from services.spreadsheet import Table, write_table
from services.volunteers import withdrawal_in_effect

BATCH = 2000


@dataclass(frozen=True)
class RosterExport:
    content: bytes | None   # the file, when no `out` was given
    rows: int
    includes_id_numbers: bool


def roster_count(session: Session, *, team: str | None = None) -> int:
    stmt = select(func.count(Volunteer.id))
    if team:
        stmt = stmt.where(Volunteer.team == team)
    return session.scalar(stmt) or 0


def roster_table(session: Session, *, cipher: PersonalDataCipher, include_id_numbers: bool = False,
                 team: str | None = None, today: date | None = None) -> Table:
    """The roster in the import's own column layout (so it can be edited and re-imported), as plain
    rows read in batches; phones and ID numbers are text cells. ID numbers are masked unless
    `include_id_numbers`; decrypting happens row by row as the file is written.

    The status is the one the roster has on `today` (Shanghai): a withdrawal dated ahead is still
    on the roster until then, and says when it leaves."""
    today = today or local_date(system_clock())
    stmt = (select(Volunteer.name, Volunteer.phone, Volunteer.team, Volunteer.vest_no, Volunteer.id_number_enc,
                   Volunteer.id_number_masked, Volunteer.joined_on, Volunteer.status, Volunteer.withdrawn_on)
            .order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id).execution_options(yield_per=BATCH))
    if team:
        stmt = stmt.where(Volunteer.team == team)
    active, withdrawn = _("在册"), _("已退出")

    def rows() -> Iterator[list]:
        with session.execute(stmt) as result:  # closed (server-side cursor too) if the export stops early
            for name, phone, team_name, vest_no, id_enc, id_masked, joined_on, status, withdrawn_on in result:
                id_cell = cipher.decrypt(id_enc) if include_id_numbers and id_enc is not None else (id_masked or "")
                if not withdrawal_in_effect(status, withdrawn_on, today):
                    label = active if withdrawn_on is None else _("在册（%(d)s 起退出）", d=withdrawn_on.isoformat())
                else:
                    label = withdrawn
                yield [name, phone, team_name or "", vest_no or "", id_cell, joined_on, label, withdrawn_on or ""]

    return Table(_("志愿者"), [_("姓名"), _("手机号"), _("所属居委"), _("马甲编号"), _("身份证号"), _("入队日期"),
                             _("状态"), _("退出日期")], rows(), widths=(12, 14, 14, 12, 22, 12, 8, 12),
                 text_columns=(1, 4))


def record_roster_export(session: Session, *, actor: str, rows: int, team: str | None) -> None:
    """An export with full ID numbers goes into the personal-data export log (PIPL); the caller commits."""
    record_export(session, actor=actor, what="roster_with_id_numbers", record_count=rows,
                  detail=f"team={team or '*'}; date={date.today().isoformat()}")


def export_roster(session: Session, *, cipher: PersonalDataCipher, actor: str,
                  include_id_numbers: bool = False, team: str | None = None, fmt: str = "xlsx",
                  out: IO[bytes] | None = None, progress: Callable[[int], None] | None = None,
                  today: date | None = None) -> RosterExport:
    """The roster as `.xlsx` or `.csv`, streamed into `out` (or returned as `content` without one).

    An export with ID numbers (e.g. the insurer's list) is recorded with who asked for it, once
    the file is written.
    """
    target = out if out is not None else io.BytesIO()
    count = write_table(target, fmt, [roster_table(session, cipher=cipher, include_id_numbers=include_id_numbers,
                                                   team=team, today=today)], progress=progress)
    if include_id_numbers:
        record_roster_export(session, actor=actor, rows=count, team=team)
        session.commit()
    return RosterExport(target.getvalue() if out is None else None, count, include_id_numbers)
