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


# --- issue 9: the gate during a lapse, surveys, reminders, the digest ------------------------------------

@pytest.mark.parametrize("gate", ["flag", "enforce"])
def test_the_gate_does_not_switch_itself_off_during_a_lapse(w, gate):
    """A policy is on file but none covers 5 February: that day is uninsured for everybody."""
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    from models import InsuranceCover
    policy = create_policy(w.session, insurer="保险公司", policy_no="P-JAN", cover_start=date(2027, 1, 1),
                           cover_end=date(2027, 1, 31), premium_per_person=Decimal("9"))
    w.session.add(InsuranceCover(policy_id=policy.id, volunteer_id=w.vols[0].id))
    w.session.commit()
    rules = ScanRules(insurance_gate=gate)
    if gate == "flag":
        assert "uninsured" in w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), rules=rules).attendance.flags
    else:
        with pytest.raises(DomainError) as exc:
            w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), rules=rules)
        assert exc.value.code == "uninsured"


def _round(session, opens_local: datetime, name: str = "年中") -> SurveyRound:
    r = SurveyRound(name=name, question="满意吗？", opens_at=from_local(opens_local))
    session.add(r)
    session.commit()
    return r


def test_survey_eligibility_is_decided_by_the_opening_date_in_shanghai(w):
    """A round opening 1 June 07:00 (31 May 23:00 UTC) includes a 1 June joiner, excludes a 31 May leaver."""
    from models import MessageRecipient
    from services.surveys import answer, results
    joiner, leaver = w.vols[0], w.vols[1]
    joiner.joined_on = date(2027, 6, 1)
    w.session.commit()
    r = _round(w.session, datetime(2027, 6, 1, 7))
    assert results(w.session, r.id).eligible == len(w.vols)          # the joiner counts
    leaver.withdrawn_on = date(2027, 5, 31)                            # still "active" in status, left the day before
    w.session.commit()
    assert results(w.session, r.id).eligible == len(w.vols) - 1
    dispatch_surveys(w.session, from_local(datetime(2027, 6, 1, 8)))
    asked = set(w.session.scalars(select(MessageRecipient.volunteer_id)))
    assert joiner.id in asked and leaver.id not in asked
    during = fixed_clock(from_local(datetime(2027, 6, 2, 9)))
    assert answer(w.session, r.id, joiner.id, 5, clock=during) == "非常满意"
    with pytest.raises(DomainError) as exc:
        answer(w.session, r.id, leaver.id, 5, clock=during)
    assert exc.value.code == "not_eligible"


def test_only_eligible_volunteers_answer_so_the_response_rate_never_exceeds_100(w):
    from services.surveys import answer, results
    late_joiner = w.vols[0]
    late_joiner.joined_on = date(2027, 6, 2)
    w.session.commit()
    r = _round(w.session, datetime(2027, 6, 1, 7))
    during = fixed_clock(from_local(datetime(2027, 6, 3, 9)))
    with pytest.raises(DomainError) as exc:
        answer(w.session, r.id, late_joiner.id, 5, clock=during)
    assert exc.value.code == "not_eligible" and "2027-06-01" in exc.value.message
    for v in w.vols[1:]:
        answer(w.session, r.id, v.id, 4, clock=during)
    # an answer recorded before the rule existed is left out of both rates
    from models import SurveyAnswer
    w.session.add(SurveyAnswer(round_id=r.id, volunteer_id=late_joiner.id, score=1, channel="web",
                               answered_at=from_local(datetime(2027, 6, 3, 9))))
    w.session.commit()
    res = results(w.session, r.id)
    assert (res.responses, res.eligible, res.response_rate, res.satisfaction_rate) == (5, 5, 1.0, 1.0)
    row = compute_indicators(w.session, 2027, today=date(2027, 7, 1)).row(14)
    assert row.evidence["response_rate"] == 1.0 and row.value == 1.0


def test_no_reminders_to_withdrawn_volunteers(w):
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    for v in w.vols[:3]:
        w.assign(shift, v)
    w.vols[1].status, w.vols[1].withdrawn_on = "withdrawn", date(2027, 2, 1)
    w.vols[2].status, w.vols[2].withdrawn_on = "withdrawn", date(2027, 2, 5)   # leaves on the day of the shift
    w.session.commit()
    assert send_due_reminders(w.session, local(2027, 2, 4, 18, 5)).queued == 1
    assert set(w.session.scalars(select(OutboxItem.volunteer_id))) == {w.vols[0].id}


def test_reminder_wording_follows_the_real_date_in_shanghai(w):
    """The 24 h reminder of a shift later the same day says 今天, tomorrow's 明天, further ones the date."""
    today_shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    tomorrow_shift = w.shift(w.p2, local(2027, 2, 6, 6, 30), local(2027, 2, 6, 9))
    w.assign(today_shift, w.vols[0])
    w.assign(tomorrow_shift, w.vols[1])
    send_due_reminders(w.session, local(2027, 2, 5, 7), leads_hours=(24,))   # 07:00 Shanghai = 23:00 UTC the day before
    texts = {m.dedupe_key: (m.title, m.body) for m in w.session.scalars(select(Message))}
    title, body = texts[f"reminder:{today_shift.id}:24h"]
    assert title == "今天巡逻提醒" and body.startswith("今天 18:00–21:00")
    title, body = texts[f"reminder:{tomorrow_shift.id}:24h"]
    assert title == "明天巡逻提醒" and body.startswith("明天 06:30–09:00")
    later = w.shift(w.p1, local(2027, 2, 8, 18), local(2027, 2, 8, 21))
    w.assign(later, w.vols[2])
    send_due_reminders(w.session, local(2027, 2, 5, 20), leads_hours=(72,))
    body = w.session.scalar(select(Message.body).where(Message.dedupe_key == f"reminder:{later.id}:72h"))
    assert body.startswith("2月8日 18:00–21:00")


def test_the_weekly_digest_counts_what_the_indicators_count(w):
    """No rejected records in the week's hours, open complaints of this programme year only, hours
    rounded down as on the dashboard (5 h 57 min is 5.9, never 6.0)."""
    from models import AttendanceCredit
    from services.digest import digest_text
    from services.programme import add_complaint
    create_user(w.session, "admin1", "password-123", "admin")
    for minutes, review in ((357, "none"), (240, "rejected")):
        start = local(2027, 2, 5, 18)
        att = Attendance(volunteer_id=w.vols[0].id, source="scan", status="closed", check_in_at=start,
                         check_out_at=start, credited_minutes=minutes, work_date=date(2027, 2, 5), review_status=review)
        w.session.add(att)
        w.session.flush()
        w.session.add(AttendanceCredit(attendance_id=att.id, volunteer_id=w.vols[0].id, work_date=date(2027, 2, 5),
                                       minutes=minutes))
    w.session.commit()
    add_complaint(w.session, received_on=date(2026, 11, 3), source="热线", description="去年的，未办结")
    add_complaint(w.session, received_on=date(2027, 1, 20), source="热线", description="今年的，未办结")
    update_year(w.session, 2027, target_volunteers=1)
    for v in w.vols[1:]:
        v.status, v.withdrawn_on = "withdrawn", date(2026, 6, 1)
    w.session.commit()
    _title, body = digest_text(w.session, now=local(2027, 2, 8, 9))
    assert "本周：巡逻 1 人次，5.9 小时" in body
    assert "未办结投诉 1 件" in body
    assert "人均 5.9 小时" in body and "人均 6.0" not in body
    first = send_digest(w.session, clock=fixed_clock(local(2027, 2, 8, 9)))
    assert first.created and "5.9 小时" in w.session.scalar(select(Message.body).where(Message.kind == "digest"))
