"""Liveness of the service: one bare `SELECT 1`, kept that way (the scan benchmark compares to it)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session


def database_ok(session: Session) -> tuple[bool, str | None]:
    try:
        session.execute(text("SELECT 1"))
        return True, None
    except SQLAlchemyError as exc:
        session.rollback()
        return False, type(getattr(exc, "orig", None) or exc).__name__
