"""Benchmark: the CPU one scan costs inside the application, against one `GET /healthz`.

    .venv/bin/python bench/scan_cost.py                     # SQLite in a temporary folder
    .venv/bin/python bench/scan_cost.py --profile cumulative # and a cProfile of one round of scans

Why beside `bench/scan_throughput.py`: wrk's throughput ratio on two shared cores moves by a few
points from run to run (the machine's speed varies more than a change of a tenth in the scan's
cost), so a change to the scan path is judged here first. The requests go straight into the WSGI
app (no gunicorn, no sockets) with the deployment's settings (Redis rate limits, Prometheus
metrics in multiprocess mode, INFO logs to a file), and the figure is CPU time (`process_time`),
not wall time. Every device checks in and out once before measuring (the first scan of a device
also stamps its "last seen"); then five rounds alternate N health checks and 2N scans (each device
checks in, then out, each with a fresh nonce), and the fastest round of each is reported.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--profile", default=None, metavar="SORT",
                        help="also profile one round of scans, sorted by SORT (cumulative, tottime)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pingan-scan-cost-"))
    try:
        os.environ.update({
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{work}/bench.db",
            "INSTANCE_PATH": str(work / "instance"), "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:6379/{args.redis_db}",
            "METRICS_TOKEN": "bench-metrics-token", "PROMETHEUS_MULTIPROC_DIR": str(work / "prom"),
            "LOG_LEVEL": "INFO", "SCAN_RATE_LIMIT_PER_VOLUNTEER": "100000 per minute",
            "SCAN_DEBOUNCE_SECONDS": "0", "GEOFENCE_MODE": "flag"})
        (work / "prom").mkdir()
        subprocess.run(["redis-cli", "-n", str(args.redis_db), "FLUSHDB"], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], check=True,
                       capture_output=True, cwd=ROOT)
        subprocess.run([sys.executable, "bench/checkin_burst.py", "setup", "--volunteers", str(args.devices),
                        "--out", str(work / "burst.json")], check=True, capture_output=True, cwd=ROOT)
        data = json.loads((work / "burst.json").read_text())
        run(args, data, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, data: dict, work: Path) -> None:
    from werkzeug.test import EnvironBuilder

    from app import create_app

    app = create_app()
    logging.getLogger().handlers[:] = [logging.FileHandler(work / "app.log")]
    n = args.devices

    def call(environ: dict) -> None:
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise SystemExit(f"{environ['PATH_INFO']} answered {status[0]}: {body[:300]!r}")

    def healthz() -> dict:
        return EnvironBuilder("/healthz", base_url="http://127.0.0.1:8000").get_environ()

    def scan(i: int) -> dict:
        body = json.dumps({"token": data["token"], "nonce": uuid.uuid4().hex, "confirm": True})
        return EnvironBuilder("/api/v1/scans", method="POST", data=body, content_type="application/json",
                              headers={"Cookie": f"pv_device={data['cookies'][i % n]}; pv_browser=b{i % n:030d}"},
                              base_url="http://127.0.0.1:8000").get_environ()

    def cpu_ms(environs: list[dict]) -> float:
        started = time.process_time()
        for environ in environs:
            call(environ)
        return (time.process_time() - started) * 1000 / len(environs)

    cpu_ms([healthz() for _ in range(50)])
    cpu_ms([scan(i) for i in range(2 * n)])   # every device stamped, checked in and out once
    health, scans = [], []
    for _ in range(args.rounds):
        health.append(cpu_ms([healthz() for _ in range(n)]))
        scans.append(cpu_ms([scan(i) for i in range(2 * n)]))
    result = {"healthz_ms": round(min(health), 3), "scan_ms": round(min(scans), 3),
              "ratio": round(min(health) / min(scans), 3),
              "healthz_rounds_ms": [round(x, 3) for x in health], "scan_rounds_ms": [round(x, 3) for x in scans]}
    print("SUMMARY " + json.dumps(result), flush=True)
    if args.profile:
        environs = [scan(i) for i in range(2 * n)]
        profile = cProfile.Profile()
        profile.enable()
        cpu_ms(environs)
        profile.disable()
        pstats.Stats(profile).sort_stats(args.profile).print_stats(40)


if __name__ == "__main__":
    main()
