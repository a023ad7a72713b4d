"""Exports built in the background: a district's year is too large to build inside a request."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime, utcnow

EXPORT_QUEUED = "queued"
EXPORT_RUNNING = "running"
EXPORT_DONE = "done"
EXPORT_FAILED = "failed"
EXPORT_EXPIRED = "expired"     # done, and its file deleted after the retention
UNFINISHED = (EXPORT_QUEUED, EXPORT_RUNNING)
_UNFINISHED_SQL = "status IN ('queued', 'running')"


class ExportJob(db.Model):
    """One export a coordinator asked for, built by the scheduler process (services/export_jobs.py).

    `params` is canonical JSON (sorted keys) so that the partial unique index can say "this user
    already has this export on the way": a second click returns the same job. `claimed_by` names
    the worker that runs it; every progress and final write is conditional on it, so a worker
    presumed dead (its job re-queued) cannot overwrite what the next one does."""

    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(String(255), default="{}")
    format: Mapped[str] = mapped_column(String(8))
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EXPORT_QUEUED, index=True)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    file_name: Mapped[str | None] = mapped_column(String(64))   # under INSTANCE_PATH/exports/
    file_size: Mapped[int | None] = mapped_column(Integer)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("uq_export_jobs_unfinished", "user_id", "kind", "params", "format", unique=True,
              sqlite_where=text(_UNFINISHED_SQL), postgresql_where=text(_UNFINISHED_SQL)),
    )

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED
