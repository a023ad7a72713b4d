"""Exports at district scale: built in the request when small, in the background when large.

Every list export (attendance, hours, expenditures, roster) is a set of streamed `Table`s
(services/exports.py, services/roster.py) with a cheap row count. Below `EXPORT_SYNC_MAX_ROWS`
the web writes it straight into the response's temporary file; above it an `ExportJob` is queued
and the scheduler process's export worker builds the file under INSTANCE_PATH/exports/, writing
its progress every few thousand rows, while the coordinator watches a progress page. Only the
user who asked (or an admin) may download it; the file is deleted after the retention.

Why the scheduler process: it already runs exactly once (leader lock), outside gunicorn, so a
long export neither holds a web worker past its 30 s timeout nor grows a worker's memory.

Claiming is one conditional UPDATE … RETURNING (SQLite ≥ 3.35 and PostgreSQL, where the row is
picked with FOR UPDATE SKIP LOCKED), so two workers never run the same job. A job whose worker
stopped writing progress for `STALE_AFTER` (a killed process) is queued again, at most
`MAX_ATTEMPTS` times (and at once when a scheduler takes over as the active one); every write of a worker is conditional on its claim, so one presumed dead
cannot overwrite the job after that.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.exports import (EXPORT_DONE, EXPORT_EXPIRED, EXPORT_FAILED, EXPORT_QUEUED, EXPORT_RUNNING, UNFINISHED,
                            ExportJob)
from models.user import User
from services.clock import Clock, system_clock
from services.errors import DomainError
from services.i18n import _
from services.spreadsheet import PROGRESS_EVERY, Table, write_table
from services.transactions import write_transaction

log = logging.getLogger(__name__)

J = ExportJob.__table__
FORMATS = ("xlsx", "csv")
PROGRAMME_KINDS = ("attendance", "hours", "expenditures")
KINDS = PROGRAMME_KINDS + ("roster",)
STALE_AFTER = timedelta(minutes=10)   # no progress written for this long: the worker is gone
MAX_ATTEMPTS = 3                      # a job that keeps killing its worker fails instead of looping
MAX_UNFINISHED_PER_USER = 5
MIMETYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv"}


# --- what each export is -------------------------------------------------------------------------

def canonical_params(params: dict[str, Any]) -> str:
    """The params as the unique index compares them: sorted keys, no spaces, blanks dropped."""
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return json.dumps(clean, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _check(kind: str, fmt: str) -> None:
    if kind not in KINDS:
        raise DomainError("not_found", _("没有这种导出"))
    if fmt not in FORMATS:
        raise DomainError("bad_format", _("不支持的导出格式“%(f)s”", f=fmt))


def _as_of(session: Session, year: int, today: date) -> date:
    from services.programme_year import year_dates

    return min(today, year_dates(session, year)[1])


def count_rows(session: Session, kind: str, params: dict[str, Any], *, today: date) -> int:
    """The export's data rows, by COUNT queries only (the threshold decision must be cheap)."""
    from services.exports import attendance_count, expenditure_count, hours_count
    from services.roster import roster_count

    if kind == "attendance":
        return attendance_count(session, params["year"])
    if kind == "hours":
        return hours_count(session, params["year"], as_of=_as_of(session, params["year"], today))
    if kind == "expenditures":
        return expenditure_count(session, params["year"])
    if kind == "roster":
        return roster_count(session, team=params.get("team"))
    raise DomainError("not_found", _("没有这种导出"))


def build_tables(session: Session, kind: str, params: dict[str, Any], *, today: date, cipher=None) -> list[Table]:
    """The export's tables; their rows are read lazily, while the file is written."""
    from services.exports import attendance_tables, expenditure_table, hours_table
    from services.roster import roster_table

    if kind == "attendance":
        return attendance_tables(session, params["year"])
    if kind == "hours":
        return [hours_table(session, params["year"], as_of=_as_of(session, params["year"], today))]
    if kind == "expenditures":
        return [expenditure_table(session, params["year"])]
    if kind == "roster":
        return [roster_table(session, cipher=cipher, include_id_numbers=bool(params.get("with_id_numbers")),
                             team=params.get("team"), today=today)]
    raise DomainError("not_found", _("没有这种导出"))


def download_name(kind: str, params: dict[str, Any], fmt: str) -> str:
    if kind == "roster":
        return f"volunteers.{fmt}"
    return f"{kind}-{params['year']}.{fmt}"


def audit_target(kind: str) -> str:
    """The target the action log has always used for this export."""
    return "roster" if kind == "roster" else f"programme:{kind}"


def audit_detail(kind: str, params: dict[str, Any], fmt: str, rows: int) -> str:
    if kind == "roster":
        return (f"rows={rows}; team={params.get('team') or '*'}; "
                f"id_numbers={'full' if params.get('with_id_numbers') else 'masked'}; format={fmt}")
    return f"year={params['year']}; format={fmt}"


def kind_label(kind: str) -> str:
    return {"attendance": _("签到明细"), "hours": _("工时表"), "expenditures": _("支出明细"),
            "roster": _("志愿者花名册")}.get(kind, kind)


def job_params(job: ExportJob) -> dict[str, Any]:
    return json.loads(job.params or "{}")


def actor_of(user: User) -> str:
    """How audit columns name a user (as web.auth.actor does for the signed-in one)."""
    return f"user:{user.id}:{user.username}"


# --- queueing and reading ------------------------------------------------------------------------

def _unfinished(session: Session, user_id: int, kind: str, params: str, fmt: str) -> ExportJob | None:
    return session.scalar(select(ExportJob).where(ExportJob.user_id == user_id, ExportJob.kind == kind,
                                                  ExportJob.params == params, ExportJob.format == fmt,
                                                  ExportJob.status.in_(UNFINISHED)))


def queue_export(session: Session, *, user_id: int, kind: str, params: dict[str, Any], fmt: str, rows_total: int,
                 locale: str = "zh", clock: Clock = system_clock) -> tuple[ExportJob, bool]:
    """Queue an export for the scheduler's worker; returns (job, created) and commits.

    A second click while the same export of the same user is queued or running returns that job
    (created False): the partial unique index settles a race between two clicks. A user may have
    at most MAX_UNFINISHED_PER_USER exports on the way (an export link is a GET, which another
    site can make a signed-in browser open)."""
    _check(kind, fmt)
    key = canonical_params(params)
    existing = _unfinished(session, user_id, kind, key, fmt)
    if existing is not None:
        return existing, False
    waiting = session.scalar(select(func.count(ExportJob.id)).where(ExportJob.user_id == user_id,
                                                                    ExportJob.status.in_(UNFINISHED))) or 0
    if waiting >= MAX_UNFINISHED_PER_USER:
        raise DomainError("too_many_exports", _("您已有 %(n)d 个导出正在生成，请等其中一个完成后再导出", n=waiting))
    job = ExportJob(user_id=user_id, kind=kind, params=key, format=fmt, locale=(locale or "zh")[:8],
                    status=EXPORT_QUEUED, rows_total=rows_total, rows_done=0, attempts=0, created_at=clock())
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # the other click won
        session.rollback()
        existing = _unfinished(session, user_id, kind, key, fmt)
        if existing is None:
            raise
        return existing, False
    return job, True


def job_for(session: Session, job_id: int, user: User) -> ExportJob:
    """The job if `user` asked for it or is an admin; otherwise the same "not found" as a job
    that does not exist (another coordinator's exports are not even listed)."""
    job = session.get(ExportJob, job_id)
    if job is None or (job.user_id != user.id and not user.is_admin):
        raise DomainError("not_found", _("找不到这个导出"))
    return job


def jobs_of(session: Session, user: User, *, limit: int = 50) -> list[ExportJob]:
    return list(session.scalars(select(ExportJob).where(ExportJob.user_id == user.id)
                                .order_by(ExportJob.id.desc()).limit(limit)))


def export_dir(instance_path: str | Path) -> Path:
    """INSTANCE_PATH/exports, readable by the service's user only (the files hold phone numbers,
    and an admin's roster export full ID numbers)."""
    path = Path(instance_path) / "exports"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def download_path(job: ExportJob, directory: Path) -> Path:
    """The built file of a finished job, or a refusal that says why there is none."""
    if job.status == EXPORT_EXPIRED:
        raise DomainError("export_expired", _("该导出文件已超过保留期限被删除，请重新导出"))
    if job.status != EXPORT_DONE or not job.file_name:
        raise DomainError("export_not_ready", _("导出文件尚未生成完成"))
    path = directory / job.file_name
    if not path.is_file():
        raise DomainError("export_expired", _("该导出文件已超过保留期限被删除，请重新导出"))
    return path


# --- the worker ----------------------------------------------------------------------------------

def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    params: dict[str, Any]
    format: str
    locale: str
    user_id: int
    rows_total: int
    worker: str


def requeue_stale(session: Session, *, clock: Clock = system_clock, stale_after: timedelta = STALE_AFTER) -> int:
    """Running jobs whose worker has not written progress for `stale_after` (killed, or the machine
    restarted) are queued again, or failed after MAX_ATTEMPTS; returns how many were re-queued."""
    now = clock()
    with write_transaction(session) as conn:
        cutoff = now - stale_after
        conn.execute(update(J).where(J.c.status == EXPORT_RUNNING, J.c.heartbeat_at < cutoff,
                                     J.c.attempts >= MAX_ATTEMPTS)
                     .values(status=EXPORT_FAILED, error_code="worker_lost", finished_at=now, claimed_by=None))
        result = conn.execute(update(J).where(J.c.status == EXPORT_RUNNING, J.c.heartbeat_at < cutoff)
                              .values(status=EXPORT_QUEUED, claimed_by=None, rows_done=0))
    return result.rowcount or 0


def claim_next(session: Session, *, worker: str, clock: Clock = system_clock) -> Claimed | None:
    """Take the oldest queued job for this worker (status `running`), or None.

    One UPDATE … WHERE status = 'queued' RETURNING: on SQLite inside BEGIN IMMEDIATE, on
    PostgreSQL with the row picked FOR UPDATE SKIP LOCKED, so two workers never get one job."""
    now = clock()
    with write_transaction(session) as conn:
        oldest = select(J.c.id).where(J.c.status == EXPORT_QUEUED).order_by(J.c.id).limit(1)
        if conn.dialect.name == "postgresql":
            oldest = oldest.with_for_update(skip_locked=True)
        row = conn.execute(update(J).where(J.c.id == oldest.scalar_subquery(), J.c.status == EXPORT_QUEUED)
                           .values(status=EXPORT_RUNNING, claimed_by=worker, started_at=now, heartbeat_at=now,
                                   attempts=J.c.attempts + 1, rows_done=0, error_code=None)
                           .returning(J.c.id, J.c.kind, J.c.params, J.c.format, J.c.locale, J.c.user_id,
                                      J.c.rows_total)).first()
    if row is None:
        return None
    return Claimed(row.id, row.kind, json.loads(row.params or "{}"), row.format, row.locale, row.user_id,
                   row.rows_total, worker)


class JobLost(Exception):
    """The job was taken from this worker (re-queued as stale): stop and leave it alone."""


class JobStopped(Exception):
    """The worker is shutting down: the job goes back to the queue."""


def _mine(claimed: Claimed):
    return (J.c.id == claimed.id) & (J.c.claimed_by == claimed.worker) & (J.c.status == EXPORT_RUNNING)


def _write_own(session: Session, claimed: Claimed, **values) -> None:
    """An update of this worker's job on a connection of its own (the session's is busy streaming
    rows; committing it would close the server-side cursor). Raises JobLost if it is not ours."""
    engine = session.get_bind()
    with engine.begin() as conn:
        if conn.execute(update(J).where(_mine(claimed)).values(**values)).rowcount != 1:
            raise JobLost(claimed.id)


def run_claimed(session: Session, claimed: Claimed, *, directory: Path, today: date, cipher=None,
                clock: Clock = system_clock, progress_every: int = PROGRESS_EVERY,
                should_stop: Callable[[], bool] = lambda: False) -> str:
    """Build a claimed job's file; returns its final status (done, failed, queued when stopped,
    or "lost"). The file is written as `<name>.part` and renamed once complete, so a download
    never sees half a file; a failure is recorded with its error code."""
    name = f"{secrets.token_urlsafe(18)}.{claimed.format}"
    final, part = directory / name, directory / (name + ".part")
    try:
        total = count_rows(session, claimed.kind, claimed.params, today=today)
        _write_own(session, claimed, rows_total=total, heartbeat_at=clock())

        def progress(done: int) -> None:
            if should_stop():
                raise JobStopped(claimed.id)
            _write_own(session, claimed, rows_done=done, heartbeat_at=clock())

        tables = build_tables(session, claimed.kind, claimed.params, today=today, cipher=cipher)
        with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            rows = write_table(fh, claimed.format, tables, progress=progress, progress_every=progress_every)
        session.rollback()  # end the long read transaction before writing
        os.replace(part, final)
        values = dict(status=EXPORT_DONE, rows_done=rows, rows_total=max(rows, total), file_name=name,
                      file_size=final.stat().st_size, finished_at=clock(), heartbeat_at=clock(), claimed_by=None)
        if claimed.kind == "roster" and claimed.params.get("with_id_numbers"):
            from services.roster import record_roster_export

            user = session.get(User, claimed.user_id)
            with write_transaction(session) as conn:
                if conn.execute(update(J).where(_mine(claimed)).values(**values)).rowcount != 1:
                    raise JobLost(claimed.id)
                record_roster_export(session, actor=actor_of(user) if user else f"user:{claimed.user_id}",
                                     rows=rows, team=claimed.params.get("team"))
        else:
            _write_own(session, claimed, **values)
        return EXPORT_DONE
    except JobLost:
        session.rollback()
        _remove(part, final)
        log.warning("export job %s was re-queued while this worker ran it; its file is dropped", claimed.id)
        return "lost"
    except JobStopped:
        session.rollback()
        _remove(part, final)
        _finish_quietly(session, claimed, status=EXPORT_QUEUED, claimed_by=None, rows_done=0,
                        attempts=J.c.attempts - 1)
        return EXPORT_QUEUED
    except Exception as exc:
        session.rollback()
        _remove(part, final)
        code = exc.code if isinstance(exc, DomainError) else "internal_error"
        if not isinstance(exc, DomainError):
            log.exception("export job %s (%s) failed", claimed.id, claimed.kind)
        _finish_quietly(session, claimed, status=EXPORT_FAILED, error_code=code[:64], finished_at=clock(),
                        claimed_by=None)
        return EXPORT_FAILED


def _finish_quietly(session: Session, claimed: Claimed, **values) -> None:
    try:
        _write_own(session, claimed, **values)
    except JobLost:
        pass


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def run_next(session: Session, *, worker: str, directory: Path, today: date, cipher=None,
             clock: Clock = system_clock, progress_every: int = PROGRESS_EVERY,
             should_stop: Callable[[], bool] = lambda: False) -> str | None:
    """Re-queue stale jobs, claim the next one and build it (in the requester's language);
    returns its outcome, or None when nothing was queued."""
    from flask import has_app_context
    from flask_babel import force_locale

    requeue_stale(session, clock=clock)
    claimed = claim_next(session, worker=worker, clock=clock)
    if claimed is None:
        return None
    if has_app_context():
        with force_locale(claimed.locale or "zh"):
            return run_claimed(session, claimed, directory=directory, today=today, cipher=cipher, clock=clock,
                               progress_every=progress_every, should_stop=should_stop)
    return run_claimed(session, claimed, directory=directory, today=today, cipher=cipher, clock=clock,
                       progress_every=progress_every, should_stop=should_stop)


# --- retention -----------------------------------------------------------------------------------

def expire_old_exports(session: Session, *, directory: Path, now: datetime, retention_days: int) -> int:
    """Delete the files of exports built more than `retention_days` ago (the rows stay, marked
    expired, so the page says what happened), and files no job owns any more (a killed worker's
    `.part`) once a day old. Returns the number of files deleted."""
    cutoff = now - timedelta(days=retention_days)
    old = session.execute(select(ExportJob.id, ExportJob.file_name)
                          .where(ExportJob.status == EXPORT_DONE, ExportJob.finished_at < cutoff)).all()
    deleted = 0
    for job_id, file_name in old:
        if file_name:
            path = directory / file_name
            if path.is_file():
                path.unlink()
                deleted += 1
        session.execute(update(J).where(J.c.id == job_id).values(status=EXPORT_EXPIRED, file_name=None))
    session.commit()
    owned = set(session.scalars(select(ExportJob.file_name).where(ExportJob.file_name.is_not(None))))
    day_ago = (now - timedelta(days=1)).timestamp()
    for path in directory.iterdir() if directory.is_dir() else ():
        if path.is_file() and path.name not in owned and path.stat().st_mtime < day_ago:
            path.unlink()
            deleted += 1
    return deleted
