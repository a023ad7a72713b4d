"""Liveness of the service: one bare `SELECT 1`, kept that way (the scan benchmark compares to it)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from services.errors import DomainError
from services.i18n import _


def database_ok(session: Session) -> tuple[bool, str | None]:
    try:
        session.execute(text("SELECT 1"))
        return True, None
    except SQLAlchemyError as exc:
        session.rollback()
        return False, type(getattr(exc, "orig", None) or exc).__name__


def storage_error(exc: DBAPIError) -> DomainError:
    """A stable code for what went wrong with the database: unreachable (restarting, down, busy),
    or, for SQLite, a full disk or a read-only file (the operator's to fix). Nothing was written:
    the transaction was rolled back whole."""
    text_ = str(getattr(exc, "orig", None) or exc).lower()
    if "disk is full" in text_:
        return DomainError("storage_full", _("服务器存储空间已满，本次没有记录。请告诉平安办。"))
    if "readonly" in text_ or "read-only" in text_:
        return DomainError("storage_readonly", _("服务器的数据库现在只读，本次没有记录。请告诉平安办。"))
    return DomainError("db_unavailable", _("服务器暂时连不上数据库，本次没有记录。请稍等片刻再试一次。"))
