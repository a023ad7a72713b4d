"""What the scheduler does, as plain services with an explicit clock (testable without APScheduler).

Every job is idempotent through the outbox's dedupe keys: running it twice, or again after a
restart, never sends anything twice; a reminder that fell due while the scheduler was down goes out
once on the next run, as long as its shift has not started.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.attendance import ATT_OPEN, Attendance
from models.event import ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.messaging import Message, SurveyRound
from models.point import PatrolPoint
from models.programme import JobRun
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, system_clock
from services.i18n import _
from services.messaging import post_message, shift_buttons
from services.outbox import Recipient
from services.surveys import remind_round, send_round
from services.volunteers import on_roster


@contextmanager
def record_run(session: Session, job: str, *, clock: Clock = system_clock) -> Iterator[dict]:
    """Record a job run (job, started, finished, outcome): evidence for indicator 13."""
    run = JobRun(job=job, started_at=clock(), outcome="running", worker=f"{socket.gethostname()}:{os.getpid()}")
    session.add(run)
    session.commit()
    run_id = run.id
    info: dict = {}
    try:
        yield info
    except Exception as exc:
        session.rollback()
        row = session.get(JobRun, run_id)
        row.finished_at, row.outcome, row.detail = clock(), "error", repr(exc)[:1000]
        session.commit()
        raise
    row = session.get(JobRun, run_id)
    row.finished_at, row.outcome, row.detail = clock(), "ok", str(info)[:1000] if info else None
    session.commit()


@dataclass(frozen=True)
class ReminderResult:
    shifts: int
    queued: int


def send_due_reminders(session: Session, now: datetime, *, leads_hours: tuple[float, ...] = (24, 2)) -> ReminderResult:
    """Remind assigned volunteers of shifts starting within each lead time (24 h and 2 h before).

    Leads are handled shortest first: when the scheduler comes back after being down and several
    reminders of one shift are overdue, only the nearest one goes out, and the longer ones are
    skipped for good (a "tomorrow" reminder after the "in 2 hours" one would only confuse).
    """
    shifts = queued = 0
    leads_hours = tuple(sorted(leads_hours))
    for index, lead in enumerate(leads_hours):
        due = session.execute(select(Shift, Event.name, PatrolPoint)
                              .join(Event, Event.id == Shift.event_id).join(PatrolPoint, PatrolPoint.id == Shift.point_id)
                              .where(Shift.starts_at > now, Shift.starts_at <= now + timedelta(hours=lead))).all()
        for shift, event_name, point in due:
            shorter = [f"reminder:{shift.id}:{x:g}h" for x in leads_hours[:index]]
            if shorter and session.scalar(select(Message.id).where(Message.dedupe_key.in_(shorter))) is not None:
                continue
            start = shift.starts_at.astimezone(SHANGHAI)
            end = shift.ends_at.astimezone(SHANGHAI)
            # declined assignments and volunteers withdrawn by the shift's day are not reminded; a
            # withdrawal dated after the shift is (they may still patrol it)
            vids = list(session.scalars(
                select(Assignment.volunteer_id).join(Volunteer, Volunteer.id == Assignment.volunteer_id)
                .where(Assignment.shift_id == shift.id, Assignment.status != ASSIGNMENT_DECLINED,
                       on_roster(start.date()))))
            if not vids:
                continue
            day = _day_words(start.date(), now.astimezone(SHANGHAI).date())
            where = point.name + (f"（{point.address}）" if point.address else "")
            body = _("%(d)s %(a)s–%(b)s 在 %(w)s 巡逻（%(e)s）。到岗后扫描点位海报上的二维码签到；不能参加请在 /shifts 里点“请假”。",
                     d=day, a=start.strftime("%H:%M"), b=end.strftime("%H:%M"), w=where, e=event_name)
            result = post_message(session, kind="reminder",
                                  title=_("巡逻提醒（%(h)s 小时后）", h=f"{lead:g}") if lead < 24
                                  else _("%(d)s巡逻提醒", d=day),
                                  body=body, recipients=[Recipient(volunteer_id=v) for v in vids],
                                  dedupe_key=f"reminder:{shift.id}:{lead:g}h", audience=_("班次 #%(s)d", s=shift.id),
                                  buttons=shift_buttons(shift.id), clock=lambda: now,
                                  sms_params={"time": f"{start:%m-%d %H:%M}–{end:%H:%M}", "place": point.name})
            shifts += 1 if result.created else 0
            queued += result.queued
    return ReminderResult(shifts, queued)


def _day_words(shift_day: date, today: date) -> str:
    """今天 / 明天 by the real Shanghai calendar (a 24 h reminder can be for later today), else the date."""
    if shift_day == today:
        return _("今天")
    if shift_day == today + timedelta(days=1):
        return _("明天")
    return _("%(m)d月%(d)d日", m=shift_day.month, d=shift_day.day)


def send_checkout_nudges(session: Session, now: datetime) -> int:
    """A shift has ended and the volunteer is still checked in: a gentle nudge, once."""
    rows = session.execute(select(Attendance.id, Attendance.volunteer_id, PatrolPoint.name)
                           .join(Shift, Shift.id == Attendance.shift_id)
                           .outerjoin(PatrolPoint, PatrolPoint.id == Attendance.point_id)
                           .where(Attendance.status == ATT_OPEN, Shift.ends_at <= now)).all()
    sent = 0
    for att_id, vid, point_name in rows:
        result = post_message(session, kind="reminder", title=_("别忘了签退"),
                              body=_("班次已经结束，您在“%(p)s”还没有签退。请再扫一次点位二维码签退；超过 30 分钟会自动结束并交平安办核对。",
                                     p=point_name or ""),
                              recipients=[Recipient(volunteer_id=vid)], dedupe_key=f"nudge:{att_id}", clock=lambda: now)
        sent += result.queued
    return sent


def dispatch_surveys(session: Session, now: datetime, *, remind_after_days: int = 3) -> dict:
    """Send a survey round when it opens; one reminder to those who have not answered."""
    out = {"sent": 0, "reminded": 0}
    for r in session.scalars(select(SurveyRound).where(SurveyRound.opens_at <= now)):
        if r.closes_at is not None and r.closes_at <= now:
            continue
        if r.sent_at is None:
            send_round(session, r.id, clock=lambda: now)
            out["sent"] += 1
        elif r.reminded_at is None and now >= r.sent_at + timedelta(days=remind_after_days):
            remind_round(session, r.id, clock=lambda: now)
            out["reminded"] += 1
    return out
