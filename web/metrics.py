"""Prometheus `/metrics` and the one-line-per-request log.

Under gunicorn each worker is its own process: with `PROMETHEUS_MULTIPROC_DIR` set (the web unit
sets it), prometheus_client keeps every worker's counters in files there and `/metrics` adds them
up, whichever worker answers the scrape. What other processes do (the sender, the scheduler) is
read from the database at scrape time (services/monitoring.py), so it is right across hosts.

`/metrics` answers only a bearer `METRICS_TOKEN` and is a 404 otherwise (also when no token is
set): behind nginx every request comes from 127.0.0.1, so an address check would protect nothing.
"""
from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid

from flask import Blueprint, Flask, Response, abort, current_app, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import event

from extensions import db

log = logging.getLogger("pingan.request")
bp = Blueprint("metrics", __name__)

SCANS = Counter("pingan_scans", "Scans by outcome: action check_in/check_out/duplicate/refused, code ok or the "
                "refusal code", ["action", "code"])
SCAN_SECONDS = Histogram("pingan_scan_duration_seconds", "Time to answer a scan (web page and API)",
                         buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0))
REQUESTS = Counter("pingan_http_requests", "HTTP requests by route and status", ["route", "status"])
POOL_IN_USE = Gauge("pingan_db_pool_connections_in_use", "Database connections checked out of the pool",
                    multiprocess_mode="livesum")
POOL_SIZE = Gauge("pingan_db_pool_size", "Configured pool size (all live processes)", multiprocess_mode="livesum")
DB_UNAVAILABLE = Counter("pingan_db_unavailable", "Requests answered 503 because the database was unreachable")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
SCAN_ENDPOINTS = {"scan.point_scan", "api_v1.Scans"}


def record_scan(action: str, code: str, seconds: float) -> None:
    SCANS.labels(action=action, code=code).inc()
    SCAN_SECONDS.observe(seconds)


class _DatabaseCollector:
    """Outbox and scheduler figures, read at scrape time (see module docstring)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from services.monitoring import ops_snapshot
        from web.runtime import now

        snap = ops_snapshot(db.session, now())
        yield GaugeMetricFamily("pingan_outbox_backlog", "Outbox rows waiting to be sent (pending or being sent)",
                                value=snap.outbox_backlog)
        yield GaugeMetricFamily("pingan_outbox_oldest_pending_age_seconds",
                                "Age of the oldest pending outbox row (0 when none)",
                                value=snap.outbox_oldest_pending_seconds)
        messages = CounterMetricFamily("pingan_outbox_messages", "Outbox rows by channel and status "
                                       "(sent, failed, unreachable, not_linked, pending, sending)",
                                       labels=["channel", "status"])
        for (channel, status), count in sorted(snap.outbox_by_channel_status.items()):
            messages.add_metric([channel, status], count)
        yield messages
        runs = GaugeMetricFamily("pingan_job_runs_24h", "Scheduler job runs in the last 24 hours by outcome",
                                 labels=["job", "outcome"])
        for (job, outcome), count in sorted(snap.job_runs_24h.items()):
            runs.add_metric([job, outcome], count)
        yield runs
        last = GaugeMetricFamily("pingan_job_last_success_timestamp_seconds", "When each job last finished well",
                                 labels=["job"])
        for job, at in sorted(snap.job_last_success.items()):
            last.add_metric([job], at.timestamp())
        yield last


@bp.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN") or ""
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        abort(404)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        process_metrics = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        process_metrics = generate_latest(REGISTRY)
    database = CollectorRegistry(auto_describe=False)
    database.register(_DatabaseCollector(current_app._get_current_object()))
    return Response(process_metrics + generate_latest(database), mimetype=CONTENT_TYPE_LATEST)


class _RequestIdRecord(logging.LogRecord):
    """Every log record carries the request id (`-` outside a request)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_id = g.get("request_id", "-") if has_request_context() else "-"


def install_logging(app: Flask) -> None:
    if logging.getLogRecordFactory() is not _RequestIdRecord:
        logging.setLogRecordFactory(_RequestIdRecord)
    # (httpx's own INFO lines, which hold the bot token, are silenced in `create_app`.)


def _watch_pool(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    size = getattr(engine.pool, "size", None)
    if callable(size):
        POOL_SIZE.set(size() + getattr(engine.pool, "_max_overflow", 0))
    event.listen(engine, "checkout", lambda *_a: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_a: POOL_IN_USE.dec())


def register_metrics(app: Flask) -> None:
    install_logging(app)
    app.register_blueprint(bp)
    _watch_pool(app)

    def _start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    # First of all before-request hooks: a request refused by CSRF or the rate limiter is logged
    # with its id and duration too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)

    @app.after_request
    def _finish(response):
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        if route != "/metrics":
            REQUESTS.labels(route=route, status=str(response.status_code)).inc()
        if request.endpoint in SCAN_ENDPOINTS and request.method == "POST":
            action, code = g.get("scan_outcome") or ("error", f"http_{response.status_code}")
            record_scan(action, code, elapsed)
        # The route's rule, never the path: sign-in links and card codes are secrets.
        log.info("%s %s %s %.1fms", request.method, route, response.status_code, elapsed * 1000)
        return response
