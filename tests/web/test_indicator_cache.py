"""The indicator pages share one computation until something is committed (or the cache ages)."""
from __future__ import annotations

import pytest

import services.indicator_snapshots
import services.indicators
import web.indicator_cache
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)


def _fresh_worker() -> None:
    """As a web worker that has just started: nothing in memory (not an erasure)."""
    with web.indicator_cache._lock:
        web.indicator_cache._cache.clear()
        web.indicator_cache._failed.clear()


@pytest.fixture(autouse=True)
def _empty_worker():
    """Each test starts as a fresh web worker: nothing from an earlier test's programme in memory."""
    _fresh_worker()
    yield
    _fresh_worker()


def test_drill_downs_reuse_one_computation_until_a_commit(client, auth, programme, session, monkeypatch):  # noqa: F811
    calls = _counting(monkeypatch)
    auth.login()
    for number in range(1, 15):
        assert client.get(f"/coord/programme/indicator/{number}?year={Y}").status_code == 200
    assert client.get(f"/api/v1/indicators?year={Y}").status_code == 200
    assert client.get(f"/api/v1/indicators?year={Y}").status_code == 200
    assert calls == [2000]  # once for the drill-downs and the summary (its evidence cut to 100)

    from models import Complaint
    from datetime import date
    session.add(Complaint(received_on=date(Y, 5, 1), source="热线", description="噪音", status="open"))
    session.commit()  # a change: the next page computes afresh
    body = client.get(f"/api/v1/indicators?year={Y}").get_json()
    assert calls == [2000, 2000] and body


def _counting(monkeypatch):
    calls = []
    real = services.indicators.compute_indicators

    def counting(*args, **kwargs):
        calls.append(kwargs.get("evidence_limit"))
        return real(*args, **kwargs)

    monkeypatch.setattr(services.indicator_snapshots, "compute_indicators", counting)
    return calls


def test_a_volunteers_scan_does_not_make_the_next_page_recompute_the_year(client, auth, programme, session,  # noqa: F811
                                                                          monkeypatch):
    """On a patrol night scans commit many times a second; the office's pages keep their result
    (at most INDICATOR_CACHE_SECONDS old) instead of recomputing the year after every scan."""
    calls = _counting(monkeypatch)
    auth.login()
    assert client.get(f"/api/v1/indicators?year={Y}").status_code == 200
    from datetime import date

    from models import Complaint
    with client.application.test_request_context("/api/v1/scans", method="POST"):
        from flask import request
        assert request.blueprint == "api_v1"
        session.add(Complaint(received_on=date(Y, 5, 2), source="热线", description="测试", status="open"))
        session.commit()  # committed inside a volunteer's request: not a new generation
    assert client.get(f"/api/v1/indicators?year={Y}").status_code == 200
    assert calls == [2000]


def test_an_aged_result_is_served_while_a_new_one_is_computed_in_the_background(app, client, auth, programme,  # noqa: F811
                                                                                 monkeypatch):
    calls = _counting(monkeypatch)
    monkeypatch.setattr(app, "testing", False)
    monkeypatch.setitem(app.config, "INDICATOR_CACHE_SECONDS", 0.0)
    monkeypatch.setitem(app.config, "INDICATOR_STALE_SECONDS", 600.0)
    monkeypatch.setitem(app.config, "INDICATOR_SNAPSHOT_SECONDS", 0)   # no scheduler storing them
    auth.login()
    first = client.get(f"/api/v1/indicators?year={Y}").get_json()
    assert calls == [2000]
    second = client.get(f"/api/v1/indicators?year={Y}").get_json()  # aged: served at once, refreshed behind
    assert second == first
    for _ in range(100):
        if len(calls) == 2 and not web.indicator_cache._refreshing:
            break
        import time
        time.sleep(0.05)
    assert calls == [2000, 2000]
    monkeypatch.setitem(app.config, "INDICATOR_STALE_SECONDS", 0.0)
    client.get(f"/api/v1/indicators?year={Y}")  # too old to serve: computed in the request
    assert len(calls) == 3


def test_one_computation_cut_to_a_smaller_evidence_limit_is_that_computation(programme, session):  # noqa: F811
    from datetime import date

    from services.indicators import compute_indicators, report_as_dict, with_evidence_limit
    big = compute_indicators(session, Y, today=date(Y, 12, 1), evidence_limit=2000)
    for limit in (0, 1, 100):
        assert report_as_dict(with_evidence_limit(big, limit)) == \
            report_as_dict(compute_indicators(session, Y, today=date(Y, 12, 1), evidence_limit=limit))
    assert any(len(r.evidence.get("below", [])) > 1 for r in big.rows)   # something was cut at 1


def test_a_starting_worker_computes_the_years_indicators_before_the_office_asks(app, programme,  # noqa: F811
                                                                                 monkeypatch):
    calls = _counting(monkeypatch)
    web.indicator_cache._cache.clear()
    monkeypatch.setattr(app, "testing", False)
    monkeypatch.setitem(app.config, "INDICATOR_WARM_UP", True)
    web.indicator_cache.warm_up(app)
    import time
    for _ in range(200):
        if web.indicator_cache._cache:
            break
        time.sleep(0.05)
    assert calls == [web.indicator_cache.SHARED_EVIDENCE] and len(web.indicator_cache._cache) == 1
    monkeypatch.setitem(app.config, "INDICATOR_WARM_UP", False)
    web.indicator_cache.warm_up(app)  # switched off (the default): nothing computed
    time.sleep(0.2)
    assert len(calls) == 1


def test_a_last_seen_stamp_is_not_a_change(app, session):
    """A coordinator's session stamp (every few minutes of clicking) must not make the next
    indicator page recompute the year; a real commit does."""
    from services.transactions import bookkeeping_commit

    before = web.indicator_cache._generation
    from models import AppSetting
    session.add(AppSetting(key="bench-stamp", value="1"))
    bookkeeping_commit(session)  # a write, committed as bookkeeping
    assert web.indicator_cache._generation == before
    from datetime import date

    from models import Complaint
    session.add(Complaint(received_on=date(Y, 5, 3), source="热线", description="真的变化", status="open"))
    session.commit()
    assert web.indicator_cache._generation == before + 1


def _today():
    from datetime import datetime
    from zoneinfo import ZoneInfo
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _complaints(body) -> int:
    return next(i["evidence"]["complaints"] for i in body["indicators"] if "complaints" in i["evidence"])


def _complain(session, day: int) -> None:
    from datetime import date

    from models import Complaint
    session.add(Complaint(received_on=date(Y, 5, day), source="热线", description="噪音", status="open"))
    session.commit()  # an office change (outside a volunteer's request)


def _wait_for_refresh(calls, n: int) -> None:
    import time
    for _ in range(200):
        if len(calls) == n and not web.indicator_cache._refreshing:
            return
        time.sleep(0.05)
    raise AssertionError(f"{len(calls)} computations, expected {n}")


def test_a_worker_with_nothing_in_memory_answers_from_the_stored_report(client, auth, programme, session,  # noqa: F811
                                                                         monkeypatch):
    """A web worker that has just started finds the year the scheduler (or another worker) stored,
    instead of computing it while the coordinator waits; signing in is not a change."""
    from services.indicator_snapshots import SHARED_EVIDENCE, compute_snapshot, save_snapshot
    auth.login()
    stored = compute_snapshot(session, Y, today=_today(), evidence_limit=SHARED_EVIDENCE)
    save_snapshot(session, stored, evidence_limit=SHARED_EVIDENCE)
    _fresh_worker()
    calls = _counting(monkeypatch)
    body = client.get(f"/api/v1/indicators?year={Y}").get_json()
    assert calls == [] and body["computed_at"] == stored.computed_at.isoformat() and body["updating"] is False
    page = client.get(f"/coord/programme/?year={Y}").get_data(as_text=True)
    import re
    assert calls == [] and re.search(r"\d\d:\d\d 计算", page) and 'http-equiv="refresh"' not in page


def test_a_stored_report_older_than_this_workers_change_is_not_served_as_current(client, auth, programme,  # noqa: F811
                                                                                  session, monkeypatch):
    from services.indicator_snapshots import SHARED_EVIDENCE, compute_snapshot, save_snapshot
    auth.login()
    save_snapshot(session, compute_snapshot(session, Y, today=_today(), evidence_limit=SHARED_EVIDENCE),
                  evidence_limit=SHARED_EVIDENCE)
    before = _complaints(client.get(f"/api/v1/indicators?year={Y}").get_json())
    _fresh_worker()
    _complain(session, 6)
    calls = _counting(monkeypatch)
    body = client.get(f"/api/v1/indicators?year={Y}").get_json()
    assert calls == [2000] and _complaints(body) == before + 1 and body["updating"] is False


def test_after_the_offices_change_a_slow_year_is_shown_updating_while_it_is_recomputed(  # noqa: F811
        app, client, auth, programme, session, monkeypatch):  # noqa: F811
    """At district scale the year takes seconds: after the office's own change the page answers at
    once with the figures from before, says so and reloads itself, while a thread counts the change."""
    calls = _counting(monkeypatch)
    monkeypatch.setattr(app, "testing", False)
    monkeypatch.setitem(app.config, "INDICATOR_INLINE_SECONDS", 0.0)   # every computation counts as slow
    auth.login()
    first = client.get(f"/api/v1/indicators?year={Y}").get_json()
    assert calls == [2000] and first["updating"] is False
    _complain(session, 7)
    page = client.get(f"/coord/programme/?year={Y}").get_data(as_text=True)
    assert '<meta name="pv-reload-after" content="5">' in page and "刚才的修改正在计入指标" in page
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page   # without scripts too
    _wait_for_refresh(calls, 2)
    body = client.get(f"/api/v1/indicators?year={Y}").get_json()
    assert body["updating"] is False and _complaints(body) == _complaints(first) + 1 and len(calls) == 2
    page = client.get(f"/coord/programme/indicator/10?year={Y}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and "pv-reload-after" not in page and "刚才的修改正在计入指标" not in page


def test_after_the_offices_change_a_quick_year_is_computed_in_the_request(app, client, auth, programme,  # noqa: F811
                                                                          session, monkeypatch):
    """A small programme's year takes milliseconds: the office's own change shows at once."""
    calls = _counting(monkeypatch)
    monkeypatch.setattr(app, "testing", False)
    monkeypatch.setitem(app.config, "INDICATOR_INLINE_SECONDS", 1000.0)
    auth.login()
    first = client.get(f"/api/v1/indicators?year={Y}").get_json()
    _complain(session, 8)
    body = client.get(f"/api/v1/indicators?year={Y}").get_json()
    assert len(calls) == 2 and body["updating"] is False and _complaints(body) == _complaints(first) + 1


def test_when_the_background_computation_fails_the_next_page_computes_in_the_request(  # noqa: F811
        app, client, auth, programme, session, monkeypatch):  # noqa: F811
    """No page that reloads itself for ever over figures that never come: the failure shows."""
    calls = _counting(monkeypatch)
    monkeypatch.setattr(app, "testing", False)
    monkeypatch.setitem(app.config, "INDICATOR_INLINE_SECONDS", 0.0)
    auth.login()
    client.get(f"/api/v1/indicators?year={Y}")
    real = services.indicator_snapshots.compute_indicators

    def broken(*args, **kwargs):
        calls.append("broken")
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services.indicator_snapshots, "compute_indicators", broken)
    _complain(session, 9)
    assert client.get(f"/api/v1/indicators?year={Y}").get_json()["updating"] is True
    _wait_for_refresh(calls, 2)
    monkeypatch.setattr(services.indicator_snapshots, "compute_indicators", real)
    body = client.get(f"/api/v1/indicators?year={Y}").get_json()   # computed here, not "updating" again
    assert body["updating"] is False and calls == [2000, "broken", 2000]


def test_while_the_scheduler_stores_the_year_a_worker_does_not_recompute_it(app, client, auth, programme,  # noqa: F811
                                                                            monkeypatch):
    """Every computation costs a web worker seconds of CPU and memory it keeps: with the scheduler
    storing the year every INDICATOR_SNAPSHOT_SECONDS, a worker leaves aged figures to it."""
    calls = _counting(monkeypatch)
    monkeypatch.setattr(app, "testing", False)
    monkeypatch.setitem(app.config, "INDICATOR_CACHE_SECONDS", 0.0)
    monkeypatch.setitem(app.config, "INDICATOR_SNAPSHOT_SECONDS", 300)
    auth.login()
    client.get(f"/api/v1/indicators?year={Y}")
    client.get(f"/api/v1/indicators?year={Y}")
    import time
    time.sleep(0.2)
    assert calls == [2000]   # not aged for 360 s


def test_a_change_made_in_another_process_shows_as_updating_here(app, client, auth, programme, session,  # noqa: F811
                                                                monkeypatch):
    """The office's change lands on one web worker; the others learn of it from `indicator_marks`
    and show "updating" too, instead of the old figures as if current."""
    from services.indicator_snapshots import mark_changed
    from services.clock import system_clock
    calls = _counting(monkeypatch)
    monkeypatch.setattr(app, "testing", False)
    monkeypatch.setitem(app.config, "INDICATOR_INLINE_SECONDS", 0.0)
    auth.login()
    assert client.get(f"/api/v1/indicators?year={Y}").get_json()["updating"] is False
    mark_changed(session, system_clock())   # as another worker does at the end of its request
    assert client.get(f"/api/v1/indicators?year={Y}").get_json()["updating"] is True
    _wait_for_refresh(calls, 2)
    assert client.get(f"/api/v1/indicators?year={Y}").get_json()["updating"] is False


def test_an_office_request_that_changes_something_leaves_the_mark_for_the_others(client, auth, session):
    from services.indicator_snapshots import read_marks
    auth.login()
    assert read_marks(session).changed_at is None
    page = client.get("/coord/programme/budget").get_data(as_text=True)
    import re
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    r = client.post("/coord/programme/budget", data={"csrf_token": csrf, "line": "work_fund", "spent_on": "2026-11-20",
                                                     "amount": "12.50", "description": "马甲清洗", "payee": "洗衣店"})
    assert r.status_code in (302, 303)
    session.expire_all()
    assert read_marks(session).changed_at is not None


def test_a_computation_started_before_an_erasure_is_neither_kept_nor_stored(programme, session):  # noqa: F811
    """A worker's thread or the scheduler's child may finish after an erasure: its report may name
    the person, so it is refused."""
    from services.clock import system_clock
    from services.indicator_snapshots import (SHARED_EVIDENCE, compute_snapshot, forget_snapshots, load_snapshot,
                                              save_snapshot)
    from tests.services.test_indicators import TODAY
    running = compute_snapshot(session, Y, today=TODAY, evidence_limit=SHARED_EVIDENCE)
    forget_snapshots(session, at=system_clock())   # the erasure, while `running` was being computed
    session.commit()
    assert not save_snapshot(session, running, evidence_limit=SHARED_EVIDENCE)
    assert load_snapshot(session, Y, TODAY, SHARED_EVIDENCE) is None
    web.indicator_cache.forget()   # as the erasure's own worker does
    web.indicator_cache._remember(("k",), web.indicator_cache._Entry(running, web.indicator_cache._generation))
    assert ("k",) not in web.indicator_cache._cache
    later = compute_snapshot(session, Y, today=TODAY, evidence_limit=SHARED_EVIDENCE)
    assert later.started_at < system_clock() and save_snapshot(session, later, evidence_limit=SHARED_EVIDENCE)
