"""Benchmark: a burst of N volunteers checking in and then out against a running server.

Usage (see docs/performance.md; `bench/run_checkin_burst.sh` does all of this for you):

    # 1. seed the server's database (same DATABASE_URL and INSTANCE_PATH as the server)
    python bench/checkin_burst.py setup --volunteers 500 --out /tmp/burst.json
    # 2. start the server (gunicorn, 2 sync workers; SCAN_DEBOUNCE_SECONDS=0 so that a check-out
    #    can follow its check-in within the same minute)
    # 3. run the burst
    python bench/checkin_burst.py run --base-url http://127.0.0.1:8000 --data /tmp/burst.json

Each round fires the check-ins of all volunteers, then their check-outs, over C concurrent
connections (default 16), and the same number of `GET /healthz` (a bare SELECT 1) for
comparison; rounds are interleaved and the median of the rounds is reported. After every phase it
counts attendances in the database: 0 errors, and 0 lost or doubled attendances, is the target.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup(args) -> None:
    from sqlalchemy import delete

    from app import create_app
    from extensions import db
    from keys import code_signer
    from models import (Assignment, Attendance, AttendanceCredit, Device, Event, LoginLink, PatrolPoint,
                        ScanRecord, Shift, Volunteer)
    from services.qr import point_token
    from services.signin import _new_device

    app = create_app()
    with app.app_context():
        for model in (AttendanceCredit, ScanRecord, Attendance, Assignment, Shift, Device, LoginLink):
            db.session.execute(delete(model))
        db.session.execute(delete(Event).where(Event.name == "压测"))
        db.session.execute(delete(PatrolPoint).where(PatrolPoint.code == "BENCH"))
        db.session.execute(delete(Volunteer).where(Volunteer.phone.like("1990%")))
        db.session.commit()
        now = datetime.now(timezone.utc)
        event = Event(name="压测", starts_on=date.today() - timedelta(days=1), ends_on=date.today() + timedelta(days=1))
        point = PatrolPoint(code="BENCH", name="压测点", lat=31.0689, lon=121.5049, radius_m=500)
        db.session.add_all([event, point])
        db.session.flush()
        shift = Shift(event_id=event.id, point_id=point.id, starts_at=now - timedelta(hours=1),
                      ends_at=now + timedelta(hours=6), capacity=args.volunteers)
        db.session.add(shift)
        vols = [Volunteer(name=f"压测{i:04d}", phone=f"1990{i:07d}", team="压测", joined_on=date.today())
                for i in range(args.volunteers)]
        db.session.add_all(vols)
        db.session.flush()
        db.session.add_all([Assignment(shift_id=shift.id, volunteer_id=v.id) for v in vols])
        cookies = [_new_device(db.session, v, "link", "bench", now).device_secret for v in vols]
        db.session.commit()
        data = {"token": point_token(code_signer(), point), "cookies": cookies, "point": point.code}
    Path(args.out).write_text(json.dumps(data))
    print(f"seeded {args.volunteers} volunteers with signed-in devices -> {args.out}")


class Client:
    def __init__(self, base: str) -> None:
        u = urlparse(base)
        self.host, self.port = u.hostname, u.port or 80

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def _burst(jobs: list, concurrency: int, fn) -> tuple[float, list[float], int, list]:
    """Run fn(job) over `concurrency` threads; return wall time, latencies, errors, results."""
    lock = threading.Lock()
    it = iter(list(enumerate(jobs)))
    latencies: list[float] = []
    results: list = [None] * len(jobs)
    errors = 0

    def worker():
        nonlocal errors
        while True:
            with lock:
                try:
                    i, job = next(it)
                except StopIteration:
                    return
            t0 = time.perf_counter()
            try:
                ok, result = fn(job)
            except Exception as exc:  # a refused connection counts as an error, not a crash
                ok, result = False, repr(exc)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                results[i] = result
                if not ok:
                    errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, errors, results


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def run(args) -> None:
    data = json.loads(Path(args.data).read_text())
    client = Client(args.base_url)
    cookies = data["cookies"][: args.volunteers]
    token = data["token"]

    def scan_job(cookie):
        body = json.dumps({"token": token, "nonce": uuid.uuid4().hex}).encode()
        status, raw = client.request("POST", "/api/v1/scans", body,
                                     {"Content-Type": "application/json", "Cookie": f"pv_device={cookie}"})
        payload = json.loads(raw) if raw else {}
        return status == 200, payload.get("action") if status == 200 else f"{status}:{raw[:80]!r}"

    def health_job(_):
        status, _raw = client.request("GET", "/healthz")
        return status == 200, status

    rounds = []
    for r in range(args.rounds):
        h_time, h_lat, h_err, _res = _burst(list(range(2 * len(cookies))), args.concurrency, health_job)
        in_time, in_lat, in_err, ins = _burst(cookies, args.concurrency, scan_job)
        out_time, out_lat, out_err, outs = _burst(cookies, args.concurrency, scan_job)
        bad = [x for x in ins if x != "check_in"] + [x for x in outs if x != "check_out"]
        scans = 2 * len(cookies)
        row = {"round": r + 1, "scan_rps": scans / (in_time + out_time), "healthz_rps": len(h_lat) / h_time,
               "p50_ms": pct(in_lat + out_lat, 50) * 1000, "p95_ms": pct(in_lat + out_lat, 95) * 1000,
               "p99_ms": pct(in_lat + out_lat, 99) * 1000, "errors": in_err + out_err + h_err,
               "unexpected": len(bad), "examples": bad[:3]}
        row["ratio"] = row["scan_rps"] / row["healthz_rps"]
        rounds.append(row)
        print(json.dumps(row, ensure_ascii=False))
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    check = None
    if os.environ.get("DATABASE_URL") or args.check_db:
        from sqlalchemy import func, select

        from app import create_app
        from extensions import db
        from models import Attendance
        app = create_app()
        with app.app_context():
            total = db.session.scalar(select(func.count(Attendance.id)))
            open_ = db.session.scalar(select(func.count(Attendance.id)).where(Attendance.status == "open"))
            per_volunteer = db.session.execute(select(func.count(Attendance.id)).group_by(Attendance.volunteer_id)).scalars().all()
        check = {"attendances": total, "open": open_, "expected": len(cookies) * args.rounds,
                 "lost_or_doubled": sum(1 for c in per_volunteer if c != args.rounds)
                 + (len(cookies) - len(per_volunteer))}
        print(json.dumps({"database_check": check}, ensure_ascii=False))
    med = {k: statistics.median(r[k] for r in rounds) for k in ("scan_rps", "healthz_rps", "ratio", "p50_ms",
                                                                  "p95_ms", "p99_ms")}
    summary = {"volunteers": len(cookies), "concurrency": args.concurrency, "rounds": args.rounds,
               **{k: round(v, 3 if k == "ratio" else 1) for k, v in med.items()},
               "errors": sum(r["errors"] for r in rounds), "unexpected": sum(r["unexpected"] for r in rounds),
               "database_check": check}
    print("SUMMARY " + json.dumps(summary, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--volunteers", type=int, default=500)
    s.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "pingan-burst.json"))
    r = sub.add_parser("run")
    r.add_argument("--base-url", default="http://127.0.0.1:8000")
    r.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "pingan-burst.json"))
    r.add_argument("--volunteers", type=int, default=500)
    r.add_argument("--concurrency", type=int, default=16)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--database-url", default=None, help="check attendances afterwards (default: $DATABASE_URL)")
    r.add_argument("--check-db", action="store_true", help="check the database named by the environment")
    args = parser.parse_args()
    setup(args) if args.cmd == "setup" else run(args)


if __name__ == "__main__":
    main()
