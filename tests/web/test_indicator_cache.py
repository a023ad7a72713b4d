"""The indicator pages share one computation until something is committed (or the cache ages)."""
from __future__ import annotations

import services.indicators
import web.indicator_cache
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)


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

    monkeypatch.setattr(web.indicator_cache, "compute_indicators", counting)
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
