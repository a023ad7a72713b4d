"""The coordinators' action log (PIPL): who changed whose data or hours, and when.

`record_action` is called by every service or adapter that imports, reviews, adjusts, withdraws,
revokes, exports or erases. It adds the entry to the caller's transaction, so an action that
rolls back leaves no entry, and an entry never claims a change that did not happen.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.audit import CoordinatorAction
from services.clock import Clock, system_clock

# Kinds of entries (the page filters on them).
ACTIONS = ("import", "review", "adjust", "proxy", "withdraw", "reinstate", "revoke_device", "revoke_card",
           "export", "subject_export", "erase", "retention", "edit_shift")
PAGE_SIZE = 100


def record_action(session: Session, actor: str, action: str, target: str, detail: str | None = None, *,
                  clock: Clock = system_clock) -> CoordinatorAction:
    """Add one entry; the caller commits (in the same transaction as the action itself)."""
    entry = CoordinatorAction(at=clock(), actor=(actor or "unknown")[:128], action=action[:32],
                              target=(target or "")[:128], detail=detail)
    session.add(entry)
    return entry


@dataclass(frozen=True)
class ActionPage:
    rows: list[CoordinatorAction]
    total: int
    page: int
    pages: int


def list_actions(session: Session, *, action: str = "", target: str = "", actor: str = "", page: int = 1,
                 per_page: int = PAGE_SIZE, since: datetime | None = None) -> ActionPage:
    stmt = select(CoordinatorAction)
    if action:
        stmt = stmt.where(CoordinatorAction.action == action)
    if target:
        stmt = stmt.where(CoordinatorAction.target.like(f"{target}%"))
    if actor:
        stmt = stmt.where(CoordinatorAction.actor.like(f"%{actor}%"))
    if since is not None:
        stmt = stmt.where(CoordinatorAction.at >= since)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = list(session.scalars(stmt.order_by(CoordinatorAction.at.desc(), CoordinatorAction.id.desc())
                                .offset((page - 1) * per_page).limit(per_page)))
    return ActionPage(rows, total, page, pages)
