"""The indicator pages share one computation until something is committed (or the cache ages)."""
from __future__ import annotations

import services.indicators
import web.indicator_cache
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)


def test_drill_downs_reuse_one_computation_until_a_commit(client, auth, programme, session, monkeypatch):  # noqa: F811
    calls = []
    real = services.indicators.compute_indicators

    def counting(*args, **kwargs):
        calls.append(kwargs.get("evidence_limit"))
        return real(*args, **kwargs)

    monkeypatch.setattr(web.indicator_cache, "compute_indicators", counting)
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


def test_one_computation_cut_to_a_smaller_evidence_limit_is_that_computation(programme, session):  # noqa: F811
    from datetime import date

    from services.indicators import compute_indicators, report_as_dict, with_evidence_limit
    big = compute_indicators(session, Y, today=date(Y, 12, 1), evidence_limit=2000)
    for limit in (0, 1, 100):
        assert report_as_dict(with_evidence_limit(big, limit)) == \
            report_as_dict(compute_indicators(session, Y, today=date(Y, 12, 1), evidence_limit=limit))
    assert any(len(r.evidence.get("below", [])) > 1 for r in big.rows)   # something was cut at 1
