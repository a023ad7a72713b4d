"""Scheduler jobs as plain services with a fixed clock; the triggers; the insurance gate."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import Assignment, Attendance, JobRun, Message, OutboxItem, ScanRecord, SurveyRound
from scheduler.runner import digest_trigger
from services.checkin import ScanRules
from services.clock import fixed_clock, from_local
from services.digest import send_digest
from services.errors import DomainError
from services.indicators import compute_indicators
from services.jobs import dispatch_surveys, record_run, send_checkout_nudges, send_due_reminders
from services.programme import create_policy, update_year
from services.users import create_user
from tests.services.test_checkin import World, local


@pytest.fixture
def w(session):
    return World(session)


def test_reminders_24h_and_2h_before_and_never_twice(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    w.assign(shift, w.vols[1])
    w.session.add(Assignment(shift_id=shift.id, volunteer_id=w.vols[2].id, status="declined"))
    w.session.commit()
    assert send_due_reminders(w.session, local(2027, 2, 4, 17)).queued == 0          # 25 h before
    first = send_due_reminders(w.session, local(2027, 2, 4, 18, 5))                   # inside 24 h
    assert (first.shifts, first.queued) == (1, 2)
    assert send_due_reminders(w.session, local(2027, 2, 4, 18, 10)).queued == 0       # the next run
    two_h = send_due_reminders(w.session, local(2027, 2, 5, 16, 30))
    assert two_h.queued == 2
    texts = w.session.scalars(select(Message.body)).all()
    assert all("一号点" in t and "18:00–21:00" in t for t in texts)
    assert send_due_reminders(w.session, local(2027, 2, 5, 18, 1)).queued == 0        # started: nothing


def test_a_reminder_due_while_the_scheduler_was_down_is_sent_once_after_restart(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    # the scheduler was down from 2027-02-04 12:00 to 2027-02-05 15:00: the 24 h reminder fell due
    after_restart = local(2027, 2, 5, 15)
    assert send_due_reminders(w.session, after_restart).queued == 1
    assert send_due_reminders(w.session, after_restart + timedelta(minutes=5)).queued == 0
    # down again until 16:30: the 2 h one is due, and goes out once
    assert send_due_reminders(w.session, local(2027, 2, 5, 16, 30)).queued == 1
    assert send_due_reminders(w.session, local(2027, 2, 5, 16, 35)).queued == 0
    assert w.session.scalar(select(func.count(OutboxItem.id))) == 2


def test_after_a_long_outage_only_the_nearest_reminder_goes_out(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.assign(shift, w.vols[0])
    assert send_due_reminders(w.session, local(2027, 2, 5, 16, 30)).queued == 1
    assert send_due_reminders(w.session, local(2027, 2, 5, 16, 40)).queued == 0
    assert "1.5" not in w.session.scalar(select(Message.title)) and "2" in w.session.scalar(select(Message.title))


def test_checkout_nudge_once_after_the_shift_ends(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18))
    assert send_checkout_nudges(w.session, local(2027, 2, 5, 20, 59)) == 0
    assert send_checkout_nudges(w.session, local(2027, 2, 5, 21, 5)) == 1
    assert send_checkout_nudges(w.session, local(2027, 2, 5, 21, 10)) == 0


def test_survey_dispatch_then_one_reminder(w):
    r = SurveyRound(name="春节后", question="满意吗", opens_at=local(2027, 2, 20, 9))
    w.session.add(r)
    w.session.commit()
    assert dispatch_surveys(w.session, local(2027, 2, 20, 8)) == {"sent": 0, "reminded": 0}
    assert dispatch_surveys(w.session, local(2027, 2, 20, 9, 5)) == {"sent": 1, "reminded": 0}
    assert dispatch_surveys(w.session, local(2027, 2, 21, 9)) == {"sent": 0, "reminded": 0}
    assert dispatch_surveys(w.session, local(2027, 2, 23, 9, 10)) == {"sent": 0, "reminded": 1}
    assert dispatch_surveys(w.session, local(2027, 2, 25, 9)) == {"sent": 0, "reminded": 0}
    assert w.session.scalar(select(func.count(Message.id))) == 2


def test_digest_falls_due_monday_0900_shanghai_not_utc():
    trigger = digest_trigger("Asia/Shanghai")
    sunday_evening = datetime(2027, 2, 7, 20, 0, tzinfo=timezone.utc)  # Monday 04:00 in Shanghai
    fire = trigger.get_next_fire_time(None, sunday_evening)
    assert fire.astimezone(timezone.utc) == datetime(2027, 2, 8, 1, 0, tzinfo=timezone.utc)  # Mon 09:00 +08:00
    assert fire.weekday() == 0 and (fire.hour, fire.minute) == (9, 0)


def test_digest_goes_to_staff_once_a_week(w):
    create_user(w.session, "admin1", "password-123", "admin")
    create_user(w.session, "coord1", "password-123", "coordinator")
    create_user(w.session, "leader1", "password-123", "leader")
    monday = fixed_clock(local(2027, 2, 8, 9))
    first = send_digest(w.session, clock=monday)
    assert first.created and first.recipients == 2
    assert not send_digest(w.session, clock=fixed_clock(local(2027, 2, 8, 9, 30))).created
    body = w.session.scalar(select(Message.body))
    assert "志愿者工作时长" in body and "本周" in body and "13900000000" not in body
    assert send_digest(w.session, clock=fixed_clock(local(2027, 2, 15, 9))).created


def test_job_runs_are_recorded_with_their_outcome(session):
    clock = fixed_clock(datetime(2027, 2, 8, 1, tzinfo=timezone.utc))
    with record_run(session, "reminders", clock=clock) as info:
        info["queued"] = 3
    with pytest.raises(RuntimeError):
        with record_run(session, "weekly_digest", clock=clock):
            raise RuntimeError("boom")
    runs = {r.job: (r.outcome, r.detail) for r in session.scalars(select(JobRun))}
    assert runs["reminders"][0] == "ok" and "3" in runs["reminders"][1]
    assert runs["weekly_digest"][0] == "error" and "boom" in runs["weekly_digest"][1]


@pytest.mark.parametrize("gate", ["flag", "enforce"])
def test_uninsured_check_in_is_flagged_or_refused_and_counts_against_indicator_10(w, gate):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    covered, uncovered = w.vols[0], w.vols[1]
    policy = create_policy(w.session, insurer="保险公司", policy_no="P-1", cover_start=date(2027, 1, 1),
                           cover_end=date(2027, 12, 31), premium_per_person=Decimal("9"))
    from models import InsuranceCover
    w.session.add(InsuranceCover(policy_id=policy.id, volunteer_id=covered.id))
    w.session.commit()
    rules = ScanRules(insurance_gate=gate)
    assert w.scan(covered, w.p1, local(2027, 2, 5, 18), rules=rules).attendance.flags == ()
    if gate == "flag":
        r = w.scan(uncovered, w.p1, local(2027, 2, 5, 18), rules=rules)
        assert "uninsured" in r.attendance.flags
        assert w.session.get(Attendance, r.attendance.id).review_status == "flagged"
    else:
        with pytest.raises(DomainError) as exc:
            w.scan(uncovered, w.p1, local(2027, 2, 5, 18), rules=rules)
        assert exc.value.code == "uninsured"
        assert w.session.scalar(select(ScanRecord.code).order_by(ScanRecord.id.desc())) == "uninsured"
    update_year(w.session, 2027, insurance_due=date(2027, 3, 31))
    row = compute_indicators(w.session, 2027, today=date(2028, 1, 5)).row(10)
    # covered: on time; uncovered: late either way (flagged scan, or never insured)
    assert row.evidence["late_count"] == len(w.vols) - 1
    assert shift.id


def test_no_policy_on_file_means_no_gate(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    assert w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), rules=ScanRules(insurance_gate="enforce")).action == "check_in"


def test_rules_read_the_insurance_gate():
    assert ScanRules.from_config({"INSURANCE_GATE": "enforce"}).insurance_gate == "enforce"
    with pytest.raises(ValueError):
        ScanRules.from_config({"INSURANCE_GATE": "strict"})
    assert from_local(datetime(2027, 1, 1)).tzinfo is not None
