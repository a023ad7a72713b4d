"""What an operator watches that lives in the database, whichever process did the work: the outbox
backlog and its oldest pending row (the sender runs in the bot process, maybe on another host),
messages by channel and status, and scheduler runs by job and outcome."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.messaging import OUT_PENDING, OUT_SENDING, OutboxItem
from models.programme import JobRun


@dataclass(frozen=True)
class OpsSnapshot:
    outbox_backlog: int
    outbox_oldest_pending_seconds: float
    outbox_by_channel_status: dict[tuple[str, str], int] = field(default_factory=dict)
    job_runs_24h: dict[tuple[str, str], int] = field(default_factory=dict)
    job_last_success: dict[str, datetime] = field(default_factory=dict)


def ops_snapshot(session: Session, now: datetime) -> OpsSnapshot:
    waiting = (OutboxItem.status.in_((OUT_PENDING, OUT_SENDING)))
    backlog = session.scalar(select(func.count(OutboxItem.id)).where(waiting)) or 0
    oldest = session.scalar(select(func.min(OutboxItem.created_at)).where(OutboxItem.status == OUT_PENDING))
    by_status = {(channel, status): count for channel, status, count in session.execute(
        select(OutboxItem.channel, OutboxItem.status, func.count(OutboxItem.id))
        .group_by(OutboxItem.channel, OutboxItem.status))}
    runs = {(job, outcome): count for job, outcome, count in session.execute(
        select(JobRun.job, JobRun.outcome, func.count(JobRun.id))
        .where(JobRun.started_at >= now - timedelta(hours=24)).group_by(JobRun.job, JobRun.outcome))}
    last_ok = {job: at for job, at in session.execute(
        select(JobRun.job, func.max(JobRun.finished_at)).where(JobRun.outcome == "ok").group_by(JobRun.job))}
    return OpsSnapshot(outbox_backlog=int(backlog),
                       outbox_oldest_pending_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
                       outbox_by_channel_status=by_status, job_runs_24h=runs,
                       job_last_success={k: v for k, v in last_ok.items() if v is not None})
