"""/metrics (bearer token only) counts scans by outcome, their latency, the outbox backlog and the
scheduler's runs; the request log is one line per request with its id and no secrets."""
from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from models import JobRun, OutboxItem
from tests.web.test_scan_pages import clock, point_path  # noqa: F401  (fixtures)

TOKEN = "metrics-test-token"


@pytest.fixture
def metrics_token(app):
    app.config["METRICS_TOKEN"] = TOKEN
    yield TOKEN
    app.config["METRICS_TOKEN"] = ""


def _metrics(client) -> str:
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def _value(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + want + '}') if labels else ''} (\S+)$"
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_are_a_404_without_the_bearer_token(client, app, metrics_token):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 404
    app.config["METRICS_TOKEN"] = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_scans_by_action_and_refusal_code_with_latency(client, auth, clock, point_path, metrics_token):  # noqa: F811
    before = _metrics(client)
    token = point_path.rsplit("/", 1)[1]
    client.post("/api/v1/scans", json={"token": token})  # not signed in
    auth.volunteer()
    assert client.post("/api/v1/scans", json={"token": token}).get_json()["action"] == "check_in"
    assert client.post("/api/v1/scans", json={"token": token}).get_json()["action"] == "duplicate"
    after = _metrics(client)

    def delta(**labels):
        return _value(after, "pingan_scans_total", **labels) - _value(before, "pingan_scans_total", **labels)

    assert delta(action="refused", code="not_signed_in") == 1
    assert delta(action="check_in", code="ok") == 1
    assert delta(action="duplicate", code="ok") == 1
    assert _value(after, "pingan_scan_duration_seconds_count") - _value(before, "pingan_scan_duration_seconds_count") == 3
    assert _value(after, "pingan_http_requests_total", route="/api/v1/scans", status="200") >= 2
    assert "pingan_db_pool_connections_in_use" in after


def test_outbox_backlog_oldest_age_and_job_runs(client, session, metrics_token):
    from web.runtime import now

    t = now()
    session.add_all([
        OutboxItem(dedupe_key="a", payload="{}", status="pending", created_at=t - timedelta(minutes=7)),
        OutboxItem(dedupe_key="b", payload="{}", status="pending", created_at=t - timedelta(minutes=1)),
        OutboxItem(dedupe_key="c", payload="{}", status="sent", created_at=t - timedelta(hours=1)),
        OutboxItem(dedupe_key="d", payload="{}", status="failed", created_at=t - timedelta(hours=1)),
        JobRun(job="reminders", started_at=t - timedelta(hours=1), finished_at=t - timedelta(hours=1), outcome="ok"),
        JobRun(job="reminders", started_at=t - timedelta(minutes=5), finished_at=t, outcome="error"),
        JobRun(job="surveys", started_at=t - timedelta(days=3), finished_at=t - timedelta(days=3), outcome="ok"),
    ])
    session.commit()
    text = _metrics(client)
    assert _value(text, "pingan_outbox_backlog") == 2
    assert 7 * 60 - 5 <= _value(text, "pingan_outbox_oldest_pending_age_seconds") <= 7 * 60 + 60
    assert _value(text, "pingan_outbox_messages_total", channel="telegram", status="sent") == 1
    assert _value(text, "pingan_outbox_messages_total", channel="telegram", status="failed") == 1
    assert _value(text, "pingan_job_runs_24h", job="reminders", outcome="error") == 1
    assert _value(text, "pingan_job_runs_24h", job="surveys", outcome="ok") == 0  # older than a day
    assert _value(text, "pingan_job_last_success_timestamp_seconds", job="surveys") > 0


def test_one_log_line_per_request_with_its_id_and_no_secrets(client, app, caplog):
    from services.signin import issue_login_link
    from models import Volunteer
    from datetime import date
    from extensions import db

    with app.app_context():
        vol = Volunteer(name="张三", phone="13900000001", vest_no="PJ-1", joined_on=date(2026, 1, 1))
        db.session.add(vol)
        db.session.commit()
        secret = issue_login_link(db.session, vol.id, base_url="http://pingan.test", created_by="t").url.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger="pingan.request"):
        resp = client.get(f"/login/{secret}?next=/me", headers={"X-Request-ID": "abcdef0123456789"})
        client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] == "abcdef0123456789"
    lines = [r for r in caplog.records if r.name == "pingan.request"]
    assert len(lines) == 2
    assert lines[0].request_id == "abcdef0123456789" and lines[0].getMessage() == (
        f"GET /login/<token> 200 {lines[0].getMessage().rsplit(' ', 1)[1]}")
    assert re.fullmatch(r"[0-9a-f]{32}", lines[1].request_id)  # a made-up id replaces a malformed one
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert secret not in logged and "13900000001" not in logged and "张三" not in logged
