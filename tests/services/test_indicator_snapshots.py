"""The year's indicators stored for every process: kept whole, the later computation wins, old days
go, and storing them is not a change to the figures."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from models import IndicatorSnapshot
from services.indicator_snapshots import (SHARED_EVIDENCE, Snapshot, compute_snapshot, load_snapshot,
                                          report_from_json, report_to_json, save_snapshot, store_today)
from services.indicators import IndicatorReport, IndicatorRow
from tests.services.test_indicators import TODAY, Y, programme  # noqa: F401  (fixture)


def test_a_stored_report_comes_back_equal_to_the_computed_one(programme, session):  # noqa: F811
    snapshot = compute_snapshot(session, Y, today=TODAY, evidence_limit=SHARED_EVIDENCE)
    report = snapshot.report
    assert any(r.evidence.get("below") for r in report.rows)          # lists of names
    assert report.satisfaction_by_round and isinstance(report.satisfaction_by_round[0], tuple)
    back = report_from_json(report_to_json(report))
    assert back == report   # dataclass equality: a tuple turned list or a number key turned text fails


def test_numbers_keys_dates_and_tuples_survive_the_trip():
    row = IndicatorRow(14, "a", "b", "c", "≥90%", "95%", "green", 0.95,
                       evidence={"by_score": {5: 3, 4: 1}, "when": date(2025, 3, 1), "pair": (1, "x"),
                                 "nested": [{"at": datetime(2025, 3, 1, 8, tzinfo=timezone.utc)}],
                                 "~date": "not a tag when it is not alone", "x": None})
    report = IndicatorReport(Y, date(2025, 12, 31), False, [row], {3: 1.5}, {"0": 1}, [("春节", 0.9, 10)],
                             [("2025-W01", 2.0)])
    assert report_from_json(report_to_json(report)) == report
    with pytest.raises(TypeError):
        report_to_json(replace(report, hours_by_month={1: object()}))


def _snap(report: IndicatorReport, started: datetime, today: date = TODAY) -> Snapshot:
    return Snapshot(report, today, started, started + timedelta(seconds=2), 2.0)


def test_the_later_started_computation_is_kept_and_old_days_are_dropped(programme, session):  # noqa: F811
    report = compute_snapshot(session, Y, today=TODAY, evidence_limit=SHARED_EVIDENCE).report
    t0 = datetime(2026, 1, 10, 2, tzinfo=timezone.utc)
    assert save_snapshot(session, _snap(report, t0 + timedelta(minutes=5)), evidence_limit=SHARED_EVIDENCE)
    # A computation that started earlier but finished later (a slow worker) does not replace it.
    assert not save_snapshot(session, _snap(replace(report, year_to_date=True), t0), evidence_limit=SHARED_EVIDENCE)
    held = load_snapshot(session, Y, TODAY, SHARED_EVIDENCE)
    assert held is not None and held.started_at == t0 + timedelta(minutes=5) and held.report.year_to_date is False
    assert load_snapshot(session, Y, TODAY, SHARED_EVIDENCE, newer_than=t0 + timedelta(minutes=5)) is None
    assert load_snapshot(session, Y, TODAY, 100) is None and load_snapshot(session, Y, TODAY - timedelta(days=1),
                                                                           SHARED_EVIDENCE) is None
    # A week later, the old day's snapshot goes when the new one is stored.
    assert save_snapshot(session, _snap(report, t0 + timedelta(days=8), TODAY + timedelta(days=8)),
                         evidence_limit=SHARED_EVIDENCE)
    assert session.scalar(select(func.count(IndicatorSnapshot.id))) == 1


def test_storing_a_report_is_not_a_change_to_the_figures(programme, session):  # noqa: F811
    import web.indicator_cache

    store_today(session, today=TODAY)   # the first one also sets up 2026's default settings: a change
    before = web.indicator_cache._generation
    snapshot = store_today(session, today=TODAY)
    assert web.indicator_cache._generation == before
    assert load_snapshot(session, snapshot.report.year, TODAY, SHARED_EVIDENCE) is not None


def test_erasing_a_volunteer_drops_the_stored_reports_that_name_them(programme, session):  # noqa: F811
    from models import Volunteer
    from services.privacy import erase_volunteer

    save_snapshot(session, compute_snapshot(session, Y, today=TODAY, evidence_limit=SHARED_EVIDENCE),
                  evidence_limit=SHARED_EVIDENCE)
    named = [item["name"] for r in load_snapshot(session, Y, TODAY, SHARED_EVIDENCE).report.rows
             for item in r.evidence.get("below", [])]
    assert named
    vol = session.scalar(select(Volunteer).where(Volunteer.name == named[0]))
    vol.status, vol.withdrawn_on = "withdrawn", TODAY
    session.commit()
    erase_volunteer(session, vol.id, actor="admin")
    assert session.scalar(select(func.count(IndicatorSnapshot.id))) == 0


def test_the_scheduler_stores_todays_report_at_start_and_every_few_minutes(app, programme, session,  # noqa: F811
                                                                          monkeypatch):
    from apscheduler.schedulers.background import BackgroundScheduler

    from models import JobRun
    from scheduler import jobs
    from scheduler.runner import job_specs, run_soon, sync_jobs

    specs = {job: trigger for job, _ref, trigger in job_specs(app)}
    assert specs["indicator_snapshot"].interval == timedelta(seconds=300)
    monkeypatch.setitem(app.config, "INDICATOR_SNAPSHOT_SECONDS", 0)
    assert "indicator_snapshot" not in {job for job, _ref, _t in job_specs(app)}
    monkeypatch.setitem(app.config, "INDICATOR_SNAPSHOT_SECONDS", 300)

    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.start(paused=True)
    try:
        sync_jobs(scheduler, app)
        run_soon(scheduler, app)
        soon = scheduler.get_job("indicator_snapshot").next_run_time
        assert soon <= datetime.now(timezone.utc) + timedelta(seconds=1)
    finally:
        scheduler.shutdown(wait=False)

    jobs.use_app(app)
    jobs.indicator_snapshot()
    session.expire_all()
    assert session.scalar(select(func.count(IndicatorSnapshot.id))) == 1
    assert session.scalar(select(JobRun.outcome).where(JobRun.job == "indicator_snapshot")) == "ok"


def test_the_cli_stores_the_year_of_the_day_it_is_given(programme, session, runner):  # noqa: F811
    import json

    result = runner.invoke(args=["indicators", "--store", "--today", "2025-12-30"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["year"] == Y
    session.expire_all()
    assert load_snapshot(session, Y, date(2025, 12, 30), SHARED_EVIDENCE) is not None
    both = runner.invoke(args=["indicators", "--store", "--year", "2024"])
    assert both.exit_code == 2 and "--year" in both.output   # --store computes the year of --today


def test_a_mark_only_moves_forward(session):
    """Two workers may write their change marks out of order: the later time stays."""
    from services.indicator_snapshots import mark_changed, read_marks
    t = datetime(2026, 11, 29, 8, tzinfo=timezone.utc)
    mark_changed(session, t + timedelta(seconds=5))
    mark_changed(session, t)
    assert read_marks(session).changed_at == t + timedelta(seconds=5)
    mark_changed(session, t + timedelta(seconds=9))
    assert read_marks(session).changed_at == t + timedelta(seconds=9) and read_marks(session).forgotten_at is None


def test_a_stored_report_can_still_be_said_in_english(programme, app, session):  # noqa: F811
    """Computed in Chinese and shared; an English page says each row again in English."""
    from flask_babel import force_locale

    from services.phrases import Phrase, localized

    with force_locale("zh"):
        report = compute_snapshot(session, Y, today=TODAY, evidence_limit=SHARED_EVIDENCE).report
    back = report_from_json(report_to_json(report))
    six = back.row(6)
    assert isinstance(six.name, Phrase) and six.name == "志愿者工作时长" and six.target == "≥6 小时"
    assert str(six.actual).startswith("人均 ")
    with app.test_request_context(), force_locale("en"):
        assert localized(six.name) == "Volunteers' patrol hours"
        assert localized(six.target) == "≥ 6 hours"
        assert localized(six.actual).startswith("Mean ") and "（" not in localized(six.actual)
        assert localized(six.note) == "Rule: mean"    # a phrase inside a phrase
        assert localized(back.row(1).level1) == "Cost" and localized(back.row(4).actual).endswith(" people")
        assert localized("周浦塘桥路口") == "周浦塘桥路口"       # anything else as it is
