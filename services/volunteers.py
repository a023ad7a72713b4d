"""The roster as coordinators manage it: search, detail, withdraw."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models.volunteer import STATUS_ACTIVE, STATUS_WITHDRAWN, Volunteer
from services.clock import Clock, local_date, system_clock
from services.audit_log import record_action
from services.errors import DomainError
from services.i18n import _

if TYPE_CHECKING:
    from services.checkin import ScanRules

PAGE_SIZE = 50


def on_roster(today: date):
    """SQL twin of `not withdrawal_in_effect(...)`: active, or withdrawn from a date still ahead."""
    return or_(Volunteer.status == STATUS_ACTIVE, Volunteer.withdrawn_on > today)


def roster_for_cards(session: Session, today: date, *, team: str | None = None) -> list[Volunteer]:
    """Everyone on the roster `today`, in card-printing order (team, vest number): a withdrawal
    dated ahead still patrols until its day, so still gets a card (web and CLI print the same)."""
    stmt = select(Volunteer).where(on_roster(today)).order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id)
    if team:
        stmt = stmt.where(Volunteer.team == team)
    return list(session.scalars(stmt))


def withdrawal_in_effect(status: str, withdrawn_on: date | None, today: date) -> bool:
    """A withdrawal counts from its date on, as the indicators count the roster: on the days before
    it the volunteer is still on the roster and may patrol."""
    return status != STATUS_ACTIVE and (withdrawn_on is None or withdrawn_on <= today)


@dataclass(frozen=True)
class VolunteerRow:
    id: int
    name: str
    phone: str
    team: str | None
    vest_no: str | None
    id_number_masked: str | None
    status: str
    joined_on: date
    withdrawn_on: date | None


@dataclass(frozen=True)
class VolunteerPage:
    rows: list[VolunteerRow]
    total: int
    page: int
    pages: int


def _row(v: Volunteer) -> VolunteerRow:
    return VolunteerRow(v.id, v.name, v.phone, v.team, v.vest_no, v.id_number_masked, v.status,
                        v.joined_on, v.withdrawn_on)


def search_volunteers(session: Session, *, q: str = "", team: str = "", status: str = "",
                      page: int = 1, per_page: int = PAGE_SIZE) -> VolunteerPage:
    stmt = select(Volunteer)
    q = (q or "").strip()
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Volunteer.name.like(like), Volunteer.phone.like(like), Volunteer.vest_no.like(like)))
    if team:
        stmt = stmt.where(Volunteer.team == team)
    if status in (STATUS_ACTIVE, STATUS_WITHDRAWN):
        stmt = stmt.where(Volunteer.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = session.scalars(stmt.order_by(Volunteer.team, Volunteer.vest_no, Volunteer.id)
                           .offset((page - 1) * per_page).limit(per_page))
    return VolunteerPage([_row(v) for v in rows], total, page, pages)


def teams(session: Session) -> list[str]:
    return [t for t in session.scalars(select(Volunteer.team).where(Volunteer.team.is_not(None))
                                       .distinct().order_by(Volunteer.team))]


def get_volunteer(session: Session, volunteer_id: int) -> Volunteer:
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    return vol


def withdraw_volunteer(session: Session, volunteer_id: int, on: date, *, rules: ScanRules | None = None,
                       clock: Clock = system_clock, by: str = "system") -> VolunteerRow:
    """Mark a volunteer as withdrawn on a date (kept on file so past years still compute).

    A withdrawal that takes effect now also ends a patrol in progress at this moment (flagged):
    otherwise the forgotten check-out would later be credited up to the shift end.
    """
    from services.checkin import ScanRules, close_for_withdrawal

    rules = rules or ScanRules()
    vol = get_volunteer(session, volunteer_id)
    if on < vol.joined_on:
        raise DomainError("withdraw_before_join", _("退出日期不能早于入队日期 %(d)s", d=vol.joined_on))
    vol.status = STATUS_WITHDRAWN
    vol.withdrawn_on = on
    record_action(session, by, "withdraw", f"volunteer:{vol.id}", f"withdrawn_on={on.isoformat()}")
    session.commit()
    if withdrawal_in_effect(vol.status, on, local_date(clock(), rules.zone)):
        close_for_withdrawal(session, volunteer_id, rules=rules, clock=clock)
    return _row(vol)


def reinstate_volunteer(session: Session, volunteer_id: int, *, by: str = "system") -> VolunteerRow:
    vol = get_volunteer(session, volunteer_id)
    if vol.erased_at is not None:
        raise DomainError("erased", _("该志愿者的个人信息已删除，不能恢复为在册"))
    vol.status = STATUS_ACTIVE
    vol.withdrawn_on = None
    record_action(session, by, "reinstate", f"volunteer:{vol.id}")
    session.commit()
    return _row(vol)
