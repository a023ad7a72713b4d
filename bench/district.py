"""Benchmark: a district on PostgreSQL (issue 13, items 5 and 8).

A district is 50,000 volunteers, 500 patrol points, 20 campaigns and a year of history (about ten
patrols per volunteer: half a million attendances with their daily credits), insurance, kit,
spending and a survey round. It is built once into a template database and copied (PostgreSQL's
`CREATE DATABASE … TEMPLATE`, a file copy) for each run, so every run starts from the same state.

    .venv/bin/python bench/district.py seed            # builds pingan_district_seed (a few minutes)
    .venv/bin/python bench/district.py soak            # item 5: the 10-minute soak
    .venv/bin/python bench/district.py pages           # item 8: every coordinator page and export

`soak` runs the production layout on this one machine: two gunicorn instances (two "hosts", each
with 2 sync workers and its own metrics directory) behind one nginx with TLS (the shipped site),
two outbox senders (one leads, one stands by), the Telegram bot, and one scheduler, against one
PostgreSQL, with Redis rate limits, metrics and INFO logs on, and every scan setting at its
production default (debounce, per-device limit, location check). A local fake Bot API server stands
in for Telegram. Over 10 minutes 15,000 volunteers each check in (first five minutes) and check out
(last five) through nginx at a steady 50 scans a second, with their own device cookies and their
phone's location; a notice to 5,000 volunteers linked to Telegram is queued a minute in and drains
meanwhile. Afterwards: every answer is compared with the database, every chat with the fake
server's copies, and the indicators and the weekly digest are timed. The resident memory of every
process is sampled every 5 seconds.

`pages` starts one gunicorn (2 sync workers, the default 30 s timeout) and the scheduler (which
builds the large exports in the background) on a fresh copy, signs in as an admin and times every
coordinator page (5 requests each) and every export to the file in hand, with the peak memory of
the web workers and the scheduler.

Results are printed as JSON lines and a SUMMARY line; docs/performance.md records them.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import secrets
import shutil
import signal
import ssl
import statistics
import subprocess  # nosec B404 - the benchmark starts the service's own processes
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
PG = "postgresql://postgres@127.0.0.1:5432"
SEED_DB = "pingan_district_seed"
YEAR = 2026
VOLUNTEERS = 50_000
POINTS = 500
CAMPAIGNS = 20
SOAK_VOLUNTEERS = 15_000          # each checks in and out once: 30,000 scans
BROADCAST_TEAM = "广播组"           # 5,000 volunteers linked to Telegram
BROADCAST_FIRST, BROADCAST_COUNT = 20_001, 5_000
ADMIN, ADMIN_PASSWORD = "district-admin", "district-bench-password"
BROADCAST_TEXT = "演练通知：今晚 20:00 各点位到岗，注意防火。"
CENTRE = (31.0689, 121.5049)


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, capture_output=True)


def copy_database(name: str) -> str:
    """A fresh copy of the seeded district, brought to the current schema (the seed may be older
    than the latest migration, as a real database would be before an update)."""
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name} TEMPLATE {SEED_DB}")
    url = f"{PG}/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="pingan-migrate-"))
    subprocess.run([str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"], cwd=ROOT, check=True,
                   capture_output=True, env=dict(os.environ, DATABASE_URL=url, INSTANCE_PATH=str(tmp)))
    shutil.rmtree(tmp, ignore_errors=True)
    return url


def point_location(i: int) -> tuple[float, float]:
    """500 points on a 25 × 20 grid about 150 m apart around the subdistrict office."""
    return CENTRE[0] + (i % 25 - 12) * 0.0014, CENTRE[1] + (i // 25 - 10) * 0.0016


# --- seed --------------------------------------------------------------------------------------------
def seed(args) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from app import create_app
    from extensions import db
    from models import (Attendance, AttendanceCredit, EquipmentDelivery, EquipmentIssue, Event, Expenditure,
                        InsuranceCover, InsurancePolicy, PatrolPoint, Shift, SurveyAnswer, SurveyRound, Volunteer)
    from services.users import create_user

    t0 = time.perf_counter()
    psql(f"DROP DATABASE IF EXISTS {SEED_DB} WITH (FORCE)")
    psql(f"CREATE DATABASE {SEED_DB}")
    tmp = Path(tempfile.mkdtemp(prefix="pingan-seed-"))
    app = create_app({"INSTANCE_PATH": str(tmp), "SQLALCHEMY_DATABASE_URI": f"{PG}/{SEED_DB}".replace(
        "postgresql://", "postgresql+psycopg://"), "LOG_LEVEL": "WARNING"})  # psycopg 3, as config does
    rng = random.Random(13)
    n = args.volunteers
    b_first, b_count = broadcast_range(n)
    with app.app_context():
        upgrade()
        s = db.session
        teams = [f"居委{i:02d}" for i in range(1, 21)]
        s.execute(insert(Volunteer), [
            {"name": f"志愿者{i:05d}", "phone": f"139{i:08d}", "vest_no": f"PJ{i:05d}", "status": "active",
             "team": BROADCAST_TEAM if b_first <= i < b_first + b_count else teams[i % 20],
             "card_version": 1, "joined_on": date(YEAR, 1, 1)} for i in range(1, n + 1)])
        s.execute(insert(PatrolPoint), [
            {"code": f"P{i:03d}", "name": f"巡逻点{i:03d}", "lat": point_location(i)[0], "lon": point_location(i)[1],
             "radius_m": 150, "active": True, "key_version": 1} for i in range(1, POINTS + 1)])
        campaigns = []
        for c in range(CAMPAIGNS):  # 20 campaigns of 5 days, spread over January to November
            first = date(YEAR, 1, 5) + timedelta(days=c * 16)
            campaigns.append((first, first + timedelta(days=4)))
        s.execute(insert(Event), [{"name": f"专项行动{c + 1:02d}", "starts_on": a, "ends_on": b}
                                  for c, (a, b) in enumerate(campaigns)])
        s.commit()
        # One evening shift (18:00–22:00 Shanghai) per campaign day and point: 50,000 shifts.
        shift_rows, shift_id = [], {}
        sid = 0
        for c, (first, _last) in enumerate(campaigns):
            for d in range(5):
                day = first + timedelta(days=d)
                start = datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc)  # 18:00 in Shanghai
                for p in range(1, POINTS + 1):
                    sid += 1
                    shift_id[(c, d, p)] = sid
                    shift_rows.append({"id": sid, "event_id": c + 1, "point_id": p, "starts_at": start,
                                       "ends_at": start + timedelta(hours=4), "capacity": 100})
        for i in range(0, len(shift_rows), 10_000):
            s.execute(insert(Shift), shift_rows[i:i + 10_000])
        s.commit()
        att_rows, credit_rows, aid = [], [], 0
        for vid in range(1, n + 1):
            for _k in range(rng.randint(6, 14)):
                c, d, p = rng.randrange(CAMPAIGNS), rng.randrange(5), rng.randint(1, POINTS)
                day = campaigns[c][0] + timedelta(days=d)
                start = datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(30))
                minutes = rng.choice((90, 120, 180, 210))
                aid += 1
                att_rows.append({"id": aid, "volunteer_id": vid, "event_id": c + 1, "shift_id": shift_id[(c, d, p)],
                                 "point_id": p, "checkout_point_id": p, "source": "scan", "status": "closed",
                                 "check_in_at": start, "check_out_at": start + timedelta(minutes=minutes),
                                 "credited_minutes": minutes, "work_date": day,
                                 "review_status": "flagged" if rng.random() < 0.01 else "none",
                                 "flags": "", "walk_in": True})
                credit_rows.append({"attendance_id": aid, "volunteer_id": vid, "work_date": day, "minutes": minutes})
            if len(att_rows) >= 20_000:
                s.execute(insert(Attendance), att_rows)
                s.execute(insert(AttendanceCredit), credit_rows)
                s.commit()
                att_rows, credit_rows = [], []
        if att_rows:
            s.execute(insert(Attendance), att_rows)
            s.execute(insert(AttendanceCredit), credit_rows)
        s.add(InsurancePolicy(id=1, insurer="平安保险", policy_no="DISTRICT-2026", cover_start=date(YEAR, 1, 1),
                              cover_end=date(YEAR, 12, 31), premium_per_person=Decimal("9.5")))
        s.flush()
        s.execute(insert(InsuranceCover), [{"policy_id": 1, "volunteer_id": v} for v in range(1, n + 1)])
        s.add(EquipmentDelivery(supplier="服装厂", delivered_on=date(YEAR, 1, 3), sets=n, unit_cost=Decimal("58"),
                                passed_sets=n))
        s.execute(insert(EquipmentIssue), [{"volunteer_id": v, "issued_on": date(YEAR, 1, 4), "kit": "马甲",
                                            "status": "issued"} for v in range(1, n + 1)])
        s.execute(insert(Expenditure), [{"year": YEAR, "line": "work_fund", "spent_on": date(YEAR, m, 5),
                                         "amount": Decimal("1000"), "description": "工作经费"} for m in range(1, 12)])
        s.add(SurveyRound(id=1, name="年中满意度", question="您对本次活动满意吗？",
                          opens_at=datetime(YEAR, 6, 1, tzinfo=timezone.utc),
                          sent_at=datetime(YEAR, 6, 1, tzinfo=timezone.utc),   # sent and reminded in June,
                          reminded_at=datetime(YEAR, 6, 4, tzinfo=timezone.utc)))  # not by the soak's scheduler
        s.flush()
        s.execute(insert(SurveyAnswer), [{"round_id": 1, "volunteer_id": v, "score": rng.choice((5, 5, 4, 4, 4, 3)),
                                          "channel": "web", "awaiting_comment": False,
                                          "answered_at": datetime(YEAR, 6, 2, tzinfo=timezone.utc)}
                                         for v in range(1, n + 1) if v % 3])
        s.commit()
        # Every attendance has its check-in and check-out scan, as on a real year: a million rows
        # whose size and statistics the scan's own lookups (last scan, shared phone) plan against.
        for action, at in (("check_in", "a.check_in_at"), ("check_out", "a.check_out_at")):
            s.execute(text(f"""
                INSERT INTO scan_records (volunteer_id, point_id, shift_id, attendance_id, scanned_at, received_at,
                                          channel, nonce, action, code, lat, lon, accuracy_m, distance_m,
                                          response_json)
                SELECT a.volunteer_id, a.point_id, a.shift_id, a.id, {at}, {at}, 'web',
                       md5(a.id::text || '{action}'), '{action}', 'ok', p.lat + 0.0002, p.lon - 0.0002, 15, 25,
                       '{{"action": "{action}", "attendance": {{"id": ' || a.id || ', "status": "closed", "source": "scan",'
                       || ' "point_code": "' || p.code || '", "point_name": "' || p.name || '", "credited_minutes": '
                       || a.credited_minutes || ', "flags": [], "walk_in": true}}, "flags": [], "year_minutes": null}}'
                FROM attendances a JOIN patrol_points p ON p.id = a.point_id"""))  # nosec B608 - fixed strings
        s.commit()
        create_user(s, ADMIN, ADMIN_PASSWORD, "admin")
        s.commit()
        from bench.indicators import sync_sequences
        sync_sequences()
        attendances = s.execute(text("SELECT count(*) FROM attendances")).scalar()
        scans = s.execute(text("SELECT count(*) FROM scan_records")).scalar()
        db.session.remove()
        db.engine.dispose()
    psql("VACUUM ANALYZE", SEED_DB)
    shutil.rmtree(tmp, ignore_errors=True)
    print("SUMMARY " + json.dumps({"seeded": SEED_DB, "volunteers": n, "points": POINTS, "campaigns": CAMPAIGNS,
                                   "shifts": len(shift_rows), "attendances": attendances, "scan_records": scans,
                                   "seconds": round(time.perf_counter() - t0, 1)}, ensure_ascii=False), flush=True)


def broadcast_range(n: int) -> tuple[int, int]:
    """Volunteers 20,001–25,000 form the broadcast team; a small trial seed uses its last quarter."""
    if n >= BROADCAST_FIRST + BROADCAST_COUNT - 1:
        return BROADCAST_FIRST, BROADCAST_COUNT
    return n - n // 4 + 1, n // 4


# --- processes and memory ------------------------------------------------------------------------------
def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, context: ssl.SSLContext | None = None) -> None:
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # nosec B310 - 127.0.0.1 only
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"no answer from {url}")


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


class MemoryWatch:
    """Resident memory of every process of the service, every `every` seconds, by role."""

    def __init__(self, roles: dict[str, int], every: float = 5.0) -> None:
        self.roles, self.every = roles, every
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def pids(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for role, pid in self.roles.items():
            if role.startswith("gunicorn"):
                for k, child in enumerate(sorted(children(pid))):
                    found[f"{role} worker {k + 1}"] = child
            else:
                found[role] = pid
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), {role: rss_kb(pid) for role, pid in self.pids().items()}))
            self._stop.wait(self.every)

    def start(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, since: float) -> dict[str, dict]:
        """Per process: peak, first sample after `since`, last sample, and the growth between them."""
        out: dict[str, dict] = {}
        roles = {r for _t, sample in self.samples for r in sample}
        for role in sorted(roles):
            series = [(t, s[role]) for t, s in self.samples if s.get(role)]
            after = [v for t, v in series if t >= since] or [v for _t, v in series]
            first, mid, last = after[0], after[len(after) // 2], after[-1]
            out[role] = {"peak_mb": round(max(v for _t, v in series) / 1024, 1), "start_mb": round(first / 1024, 1),
                         "mid_mb": round(mid / 1024, 1), "end_mb": round(last / 1024, 1),
                         "growth_pct": round(100 * (last - first) / first, 1),
                         "second_half_growth_pct": round(100 * (last - mid) / mid, 1)}
        return out


def start(cmd: list[str], env: dict, log: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, **kw)


def stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def nginx_conf(work: Path, https_port: int, http_port: int, upstreams: list[int]) -> Path:
    """The shipped site (deploy/nginx/pingan.conf) on 127.0.0.1 with a self-signed certificate and
    the two web instances as its upstream, as the deployment check runs it."""
    from deploy.check import local_nginx

    tls = work / "tls"
    tls.mkdir()
    cert, key = tls / "cert.pem", tls / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    site = (ROOT / "deploy" / "nginx" / "pingan.conf").read_text(encoding="utf-8")
    site = site.replace("/opt/pingan/app/static/", str(ROOT / "static") + "/")
    return local_nginx(site, work / "nginx", http_port=http_port, https_port=https_port, upstreams=upstreams,
                       cert=cert, key=key, foreground=True, connections=1024)


def base_env(work: Path, url: str, public: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCAN_", "GEOFENCE", "RATELIMIT"))}
    env.update({"DATABASE_URL": url, "INSTANCE_PATH": str(work / "instance"), "PUBLIC_BASE_URL": public,
                "LOG_LEVEL": "INFO", "METRICS_TOKEN": "district-metrics-token",
                "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/14", "TIMEZONE": "Asia/Shanghai"})
    subprocess.run(["redis-cli", "-n", "14", "FLUSHDB"], check=True, capture_output=True)
    return env


def gunicorn(name: str, port: int, env: dict, work: Path) -> subprocess.Popen:
    prom = work / f"prom-{name}"
    prom.mkdir(exist_ok=True)
    e = dict(env, GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(prom))
    return start([str(VENV_BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py", "app:create_app()"], e,
                 work / f"{name}.log")


def flask(cmd: str, env: dict, work: Path, name: str) -> subprocess.Popen:
    """The `bot`, `sender` or `scheduler` process as its systemd unit starts it (`python -m …`,
    with the unit's own `Environment=`, e.g. MALLOC_ARENA_MAX)."""
    from deploy.check import unit_environment

    prom = work / f"prom-{name}"
    prom.mkdir(exist_ok=True)
    module = {"bot": "bot", "sender": "delivery", "scheduler": "scheduler"}[cmd]
    return start([str(VENV_BIN / "python"), "-m", module],
                 dict(env, **unit_environment(f"pingan-{cmd}"), PROMETHEUS_MULTIPROC_DIR=str(prom)),
                 work / f"{name}.log")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]


# --- soak (item 5) ------------------------------------------------------------------------------------
def prepare_soak(url: str, work: Path, now: datetime) -> dict:
    """Today's campaign: a shift at every point from an hour ago to eleven hours on, 30 of the
    first 15,000 volunteers assigned to each, each signed in on a phone (a device cookie); 5,000
    others linked to Telegram chats."""
    from sqlalchemy import insert, select

    from app import create_app
    from extensions import db
    from keys import code_signer
    from models import Assignment, ChatLink, Device, Event, PatrolPoint, Shift, Volunteer
    from services.qr import point_token
    from services.tokens import hash_secret, new_secret

    app = create_app({"INSTANCE_PATH": str(work / "instance"),
                      "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://"),
                      "LOG_LEVEL": "WARNING"})
    with app.app_context():
        s = db.session
        today = now.astimezone(timezone(timedelta(hours=8))).date()
        event = Event(name="冬季平安守护（压测）", starts_on=today, ends_on=today)
        s.add(event)
        s.flush()
        event_id = event.id
        points = s.execute(select(PatrolPoint.id, PatrolPoint.code, PatrolPoint.lat, PatrolPoint.lon)
                           .order_by(PatrolPoint.id)).all()
        s.execute(insert(Shift), [{"event_id": event.id, "point_id": p.id, "starts_at": now - timedelta(hours=1),
                                   "ends_at": now + timedelta(hours=11), "capacity": 40} for p in points])
        shifts = dict(s.execute(select(Shift.point_id, Shift.id).where(Shift.event_id == event.id)).all())
        linked = s.execute(select(Volunteer.id).where(Volunteer.team == BROADCAST_TEAM)).scalars().all()
        phones = []
        for v in range(1, min(SOAK_VOLUNTEERS, min(linked) - 1) + 1):
            p = points[(v - 1) % len(points)]
            phones.append({"volunteer_id": v, "secret": new_secret() + new_secret(), "point": p.id,
                           "lat": p.lat, "lon": p.lon})
        s.execute(insert(Assignment), [{"shift_id": shifts[ph["point"]], "volunteer_id": ph["volunteer_id"],
                                        "status": "confirmed"} for ph in phones])
        s.execute(insert(Device), [{"volunteer_id": ph["volunteer_id"], "token_hash": hash_secret(ph["secret"]),
                                    "method": "card", "user_agent": "district-bench", "created_at": now,
                                    "last_seen_at": now} for ph in phones])
        s.execute(insert(ChatLink), [{"chat_id": 800_000 + v, "volunteer_id": v, "linked_at": now} for v in linked])
        s.commit()
        signer = code_signer()
        tokens = {p.id: point_token(signer, s.get(PatrolPoint, p.id)) for p in points}
        for ph in phones:
            ph["token"] = tokens[ph["point"]]
        db.session.remove()
        db.engine.dispose()
    analyze(url)
    return {"phones": phones, "event": event_id, "chats": [800_000 + v for v in linked]}


def analyze(url: str) -> None:
    """Fresh statistics after a bulk insert, as autovacuum would take them within a minute on a real
    server. This machine's PostgreSQL runs with autovacuum off (a test server): without this, the
    planner took tonight's 50,000 notice recipients for 213 rows and joined them in a nested loop."""
    psql("ANALYZE", url.rsplit("/", 1)[1])


class Phones:
    """An open-loop load: scan k is sent at start + k / rate whatever the server does, from a pool
    of threads with keep-alive HTTPS connections to nginx; latency is from sending to the answer."""

    def __init__(self, https_port: int, threads: int = 48) -> None:
        self.port, self.threads = https_port, threads
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE  # the benchmark's own self-signed certificate on 127.0.0.1
        self.results: list[dict] = []
        self.lock = threading.Lock()

    def _conn(self):
        import http.client
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.ctx)

    def run(self, jobs: list[tuple[float, dict, str]]) -> None:
        q: queue.Queue = queue.Queue()
        t0 = time.monotonic()
        self.t0 = t0

        def worker():
            conn = self._conn()
            while True:
                item = q.get()
                if item is None:
                    return
                at, phone, expect = item
                body = json.dumps({"token": phone["token"], "nonce": secrets.token_hex(12), "confirm": True,
                                   "lat": phone["lat"] + 0.0002, "lon": phone["lon"] - 0.0002, "accuracy": 15}).encode()
                headers = {"Content-Type": "application/json", "Cookie": f"pv_device={phone['secret']}; "
                           f"pv_browser=district{phone['volunteer_id']:06d}browser",
                           "User-Agent": "district-bench"}
                sent = time.monotonic()
                status, answer = 0, {}
                for attempt in range(2):
                    try:
                        conn.request("POST", "/api/v1/scans", body=body, headers=headers)
                        resp = conn.getresponse()
                        raw = resp.read()
                        status = resp.status
                        answer = json.loads(raw) if raw else {}
                        break
                    except (OSError, ValueError) as exc:  # a closed keep-alive connection: reconnect once
                        conn.close()
                        conn = self._conn()
                        answer = {"exception": repr(exc)}
                done = time.monotonic()
                att = (answer.get("attendance") or {}).get("id") if isinstance(answer, dict) else None
                with self.lock:
                    self.results.append({"at": at, "sent": sent - t0, "latency": done - sent, "lag": sent - t0 - at,
                                         "status": status, "action": answer.get("action"), "expect": expect,
                                         "attendance": att, "volunteer": phone["volunteer_id"],
                                         "error": None if status == 200 else str(answer)[:200]})

        pool = [threading.Thread(target=worker, daemon=True) for _ in range(self.threads)]
        for t in pool:
            t.start()
        for at, phone, expect in jobs:
            delay = t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            q.put((at, phone, expect))
        for _ in pool:
            q.put(None)
        for t in pool:
            t.join()


def run_phones_apart(client: "Phones", jobs: list, out: Path) -> tuple[float, float, list[dict]]:
    """The phones run in a process of their own: sharing this one's interpreter lock with the fake
    Bot API server (busy with the broadcast) delayed the sending and the reading of answers, and
    that showed as server latency. Returns the start and end on this process's monotonic clock."""
    import multiprocessing

    def child() -> None:
        client.run(jobs)
        out.write_text(json.dumps({"t0": client.t0, "end": time.monotonic(), "results": client.results}))

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join()
    data = json.loads(out.read_text())
    return data["t0"], data["end"], data["results"]


def soak(args) -> None:
    from tests.fake_telegram import FakeTelegram, max_in_window

    work = Path(tempfile.mkdtemp(prefix="pingan-soak-"))
    name = f"pingan_soak_{int(time.time())}"
    url = copy_database(name)
    https_port, http_port = free_port(), free_port()
    web_ports = [free_port(), free_port()]
    env = base_env(work, url, f"https://127.0.0.1:{https_port}")
    env["TRUSTED_PROXY_HOPS"] = "1"
    procs: list[subprocess.Popen] = []
    fake = FakeTelegram().start()
    env.update(TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.base_url)
    try:
        now = datetime.now(timezone.utc)
        t_prep = time.perf_counter()
        data = prepare_soak(url, work, now)
        prep_s = time.perf_counter() - t_prep
        roles: dict[str, int] = {}
        for k, port in enumerate(web_ports):
            p = gunicorn(f"web{k + 1}", port, env, work)
            procs.append(p)
            roles[f"gunicorn host {k + 1}"] = p.pid
        for k in (1, 2):
            p = flask("sender", env, work, f"sender{k}")
            procs.append(p)
            roles[f"sender {k}"] = p.pid
        p = flask("bot", env, work, "bot")
        procs.append(p)
        roles["bot"] = p.pid
        p = flask("scheduler", env, work, "scheduler")
        procs.append(p)
        roles["scheduler"] = p.pid
        nginx = start(["nginx", "-c", str(nginx_conf(work, https_port, http_port, web_ports))], env, work / "nginx.log")
        procs.append(nginx)
        for port in web_ports:
            wait_http(f"http://127.0.0.1:{port}/healthz")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        wait_http(f"https://127.0.0.1:{https_port}/healthz", context=ctx)
        watch = MemoryWatch(roles).start()
        rate, minutes = args.rate, args.minutes
        phones = data["phones"][: int(rate * minutes * 60 / 2)]
        step = 1.0 / rate
        half = len(phones) * step
        jobs = [(i * step, ph, "check_in") for i, ph in enumerate(phones)]
        jobs += [(half + i * step, ph, "check_out") for i, ph in enumerate(phones)]
        broadcast: dict = {}

        def queue_broadcast():
            time.sleep(60)
            from sqlalchemy import func, select

            from app import create_app
            from extensions import db
            from models import Message
            from services.messaging import Audience, send_notice
            app = create_app({"INSTANCE_PATH": str(work / "instance"), "LOG_LEVEL": "WARNING",
                              "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://")})
            with app.app_context():
                broadcast["queued_at"] = time.monotonic()
                send_notice(db.session, text=BROADCAST_TEXT,
                            audience=Audience("team", BROADCAST_TEAM), nonce=f"district-{time.time()}",
                            created_by_user_id=None)
                broadcast["queue_s"] = time.monotonic() - broadcast["queued_at"]
                broadcast["messages"] = db.session.scalar(select(func.count(Message.id)))
                db.session.remove()
                db.engine.dispose()
            want = set(data["chats"])
            try:
                fake.wait_for(lambda: want <= {int(c.params.get("chat_id")) for c in fake.sent()
                                               if BROADCAST_TEXT[:8] in str(c.params.get("text", ""))},
                              timeout=1200)
                broadcast["drained_s"] = max(c.at for c in fake.sent()) - broadcast["queued_at"]
            except Exception as exc:  # noqa: BLE001 - reported, not raised from a thread
                broadcast["error"] = repr(exc)

        bthread = threading.Thread(target=queue_broadcast, daemon=True)
        bthread.start()
        client = Phones(https_port)
        print(json.dumps({"soak": "started", "scans": len(jobs), "rate": rate, "prepare_s": round(prep_s, 1)}),
              flush=True)
        client.t0, soak_end, client.results = run_phones_apart(client, jobs, work / "answers.json")
        bthread.join(timeout=1200)
        watch.stop()
        memory = watch.report(since=client.t0 + 60)
        summary = {"scans": len(client.results)}
        ok = [r for r in client.results if r["status"] == 200]
        lat = [r["latency"] for r in client.results]
        summary.update({
            "duration_s": round(soak_end - client.t0, 1),
            "throughput_per_s": round(len(client.results) / (soak_end - client.t0), 1),
            "errors": len(client.results) - len(ok),
            "unexpected_actions": sum(1 for r in ok if r["action"] != r["expect"]),
            "p50_ms": round(pct(lat, 50) * 1000, 1), "p95_ms": round(pct(lat, 95) * 1000, 1),
            "p99_ms": round(pct(lat, 99) * 1000, 1), "max_ms": round(max(lat) * 1000, 1),
            "client_lag_p99_ms": round(pct([r["lag"] for r in client.results], 99) * 1000, 1),
            "error_examples": [r["error"] for r in client.results if r["status"] != 200][:5],
        })
        summary["attendance_check"] = check_soak(url, client.results, now)
        copies: dict = {}
        for c in fake.sent():  # the notice's copies only (the scheduler may send other messages meanwhile)
            if BROADCAST_TEXT[:8] in str(c.params.get("text", "")):
                chat = int(c.params.get("chat_id"))
                copies[chat] = copies.get(chat, 0) + 1
        broadcast["other_messages_sent"] = len(fake.sent()) - sum(copies.values())
        broadcast.update({"chats": len(data["chats"]),
                          "chats_reached": sum(1 for k in copies if k in set(data["chats"])),
                          "chats_with_more_than_one_copy": sum(1 for n in copies.values() if n > 1),
                          "max_sends_in_any_second": max_in_window([c.at for c in fake.calls
                                                                    if c.method == "sendMessage"]),
                          "rate_limit_per_s": int(env.get("OUTBOX_RATE_PER_SECOND", 25))})
        if "drained_s" in broadcast:
            broadcast["floor_s_at_rate"] = round(len(data["chats"]) / broadcast["rate_limit_per_s"], 1)
            broadcast["drained_s"] = round(broadcast["drained_s"], 1)
        summary["broadcast"] = broadcast
        summary["memory"] = memory
        summary["after"] = time_indicators(url, work)
        summary["scan_records_rows"] = table_sizes(name)
        print("SUMMARY " + json.dumps(summary, ensure_ascii=False), flush=True)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    finally:
        stop_all(procs)
        fake.stop()
        if not args.keep:
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {name} and {work}")


def check_soak(url: str, results: list[dict], now: datetime) -> dict:
    """Every answered check-in is one stored attendance, every answered check-out closed it; no
    attendance was made that nobody was told about; no volunteer has two."""
    import psycopg
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, volunteer_id, status FROM attendances WHERE check_in_at >= %s",
                            (now - timedelta(minutes=5),)).fetchall()
    by_id = {r[0]: r for r in rows}
    ins = [r for r in results if r["status"] == 200 and r["action"] == "check_in"]
    outs = [r for r in results if r["status"] == 200 and r["action"] == "check_out"]
    per_vol: dict[int, int] = {}
    for r in rows:
        per_vol[r[1]] = per_vol.get(r[1], 0) + 1
    lost = sum(1 for r in ins if r["attendance"] not in by_id) + \
        sum(1 for r in outs if by_id.get(r["attendance"], (0, 0, ""))[2] != "closed")
    answered = {r["attendance"] for r in ins}
    return {"attendances_made": len(rows), "answered_check_ins": len(ins), "answered_check_outs": len(outs),
            "closed": sum(1 for r in rows if r[2] == "closed"), "lost": lost,
            "doubled": sum(n - 1 for n in per_vol.values() if n > 1),
            "made_but_not_answered": sum(1 for i in by_id if i not in answered)}


def time_indicators(url: str, work: Path) -> dict:
    from app import create_app
    from extensions import db
    from services.digest import digest_text
    from services.indicators import compute_indicators

    app = create_app({"INSTANCE_PATH": str(work / "instance"), "LOG_LEVEL": "WARNING",
                      "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://")})
    out = {}
    with app.app_context():
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            compute_indicators(db.session, YEAR, today=datetime.now(timezone.utc).date())
            times.append(time.perf_counter() - t0)
            db.session.rollback()
        out["indicators_s"] = round(statistics.median(times), 2)
        t0 = time.perf_counter()
        digest_text(db.session, now=datetime.now(timezone.utc))
        out["digest_s"] = round(time.perf_counter() - t0, 2)
        db.session.remove()
        db.engine.dispose()
    return out


def table_sizes(dbname: str) -> dict:
    import psycopg
    with psycopg.connect(f"{PG}/{dbname}") as conn:
        rows = conn.execute("SELECT count(*), pg_total_relation_size('scan_records') FROM scan_records").fetchone()
        att = conn.execute("SELECT count(*), pg_total_relation_size('attendances') FROM attendances").fetchone()
    return {"scan_records": rows[0], "scan_records_mb": round(rows[1] / 2**20, 1),
            "bytes_per_scan_record": round(rows[1] / max(rows[0], 1)),
            "attendances": att[0], "attendances_mb": round(att[1] / 2**20, 1)}


# --- pages (item 8) -----------------------------------------------------------------------------------
def pages(args) -> None:
    import httpx

    work = Path(tempfile.mkdtemp(prefix="pingan-pages-"))
    name = f"pingan_pages_{int(time.time())}"
    url = copy_database(name)
    port = free_port()
    env = base_env(work, url, f"http://127.0.0.1:{port}")
    procs: list[subprocess.Popen] = []
    try:
        notice = prepare_pages(url, work)
        web = gunicorn("web", port, env, work)
        sched = flask("scheduler", env, work, "scheduler")
        procs += [web, sched]
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        # The scheduler stores today's indicators as it starts (web/indicator_cache.py): the pages
        # are timed once that is done, as on a running deployment whose web workers restart.
        snapshot_s = wait_for_job(url, "indicator_snapshot")
        print(json.dumps({"scheduler's first indicator snapshot (s)": snapshot_s}), flush=True)
        time.sleep(2)
        peak: dict[int, int] = {}

        def note_memory() -> None:
            """Each web worker's high-water mark, kept for workers that gunicorn later replaces."""
            for pid in children(web.pid):
                peak[pid] = max(peak.get(pid, 0), rss_kb(pid, "VmHWM"))

        client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
        page = client.get("/coord/login").text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        r = client.post("/coord/login", data={"csrf_token": csrf, "username": ADMIN, "password": ADMIN_PASSWORD})
        assert r.status_code == 302, r.text[:300]
        results = []
        for label, path in page_list(notice):
            times, status, size = [], 0, 0
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                r = client.get(path)
                times.append(time.perf_counter() - t0)
                status, size = r.status_code, len(r.content)
                note_memory()
            row = {"page": label, "path": path, "status": status, "kb": round(size / 1024, 1),
                   "p95_s": round(pct(times, 95), 3), "median_s": round(statistics.median(times), 3)}
            results.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
        office = office_change(client, note_memory)
        print(json.dumps(office, ensure_ascii=False), flush=True)
        restart = restarted_workers(client, web.pid)
        print(json.dumps(restart, ensure_ascii=False), flush=True)
        for label, path in export_list():
            t0 = time.perf_counter()
            r = client.get(path)
            mode = "direct"
            if r.status_code in (302, 303) and "/coord/exports/" in r.headers.get("location", ""):
                mode = "background"
                job = r.headers["location"]
                while True:
                    st = client.get(job.rstrip("/") + "/status").json()
                    if st.get("status") in ("done", "failed"):
                        break
                    note_memory()
                    time.sleep(1)
                r = client.get(st["download_url"]) if st.get("status") == "done" else r
            row = {"export": label, "mode": mode, "status": r.status_code, "mb": round(len(r.content) / 2**20, 2),
                   "seconds": round(time.perf_counter() - t0, 1)}
            results.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
        note_memory()
        peaks = {f"web worker pid {pid}": round(kb / 1024, 1) for pid, kb in sorted(peak.items())}
        peaks["scheduler (background exports)"] = round(max([rss_kb(sched.pid, "VmHWM")] +
                                                           [rss_kb(c, "VmHWM") for c in children(sched.pid)]) / 1024, 1)
        summary = {"pages": [r for r in results if "page" in r], "exports": [r for r in results if "export" in r],
                   "peak_rss_mb": peaks, "first_snapshot_s": snapshot_s, "office_change": office,
                   "restarted_workers": restart,
                   "slowest_page": max((r for r in results if "page" in r), key=lambda r: r["p95_s"])}
        print("SUMMARY " + json.dumps(summary, ensure_ascii=False), flush=True)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    finally:
        stop_all(procs)
        if not args.keep:
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            shutil.rmtree(work, ignore_errors=True)


def wait_for_job(url: str, job: str, timeout: float = 300) -> float:
    """Seconds until the scheduler's first successful run of `job` (its own record of the run)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    t0, deadline = time.perf_counter(), time.time() + timeout
    try:
        while time.time() < deadline:
            with engine.connect() as conn:
                row = conn.execute(text("SELECT finished_at - started_at FROM job_runs WHERE job = :job "
                                        "AND outcome = 'ok' ORDER BY id DESC LIMIT 1"), {"job": job}).first()
            if row is not None:
                return round(row[0].total_seconds(), 2)
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise SystemExit(f"the scheduler did not run {job} within {timeout:.0f} s (waited {time.perf_counter() - t0:.0f} s)")


def office_change(client, note_memory) -> dict:
    """The office records a work-fund expense, then keeps opening the indicators page: how long each
    answer takes, and how long until the page shows the new total instead of "updating"."""
    page = client.get(f"/coord/programme/budget?year={YEAR}").text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    amount, before = "123.45", _work_fund(client)
    r = client.post(f"/coord/programme/budget?year={YEAR}", data={
        "csrf_token": csrf, "line": "work_fund", "spent_on": f"{YEAR}-11-20", "amount": amount,
        "description": "bench: an office change", "payee": "bench"})
    assert r.status_code in (302, 303), r.text[:300]
    t0, times, updating, shown = time.perf_counter(), [], 0, None
    while time.perf_counter() - t0 < 120:
        t1 = time.perf_counter()
        body = client.get("/coord/programme/").text
        times.append(time.perf_counter() - t1)
        note_memory()
        updating += 'http-equiv="refresh"' in body
        if "刚才的修改正在计入指标" not in body and _work_fund(client) != before:
            shown = time.perf_counter() - t0
            break
        time.sleep(0.5)
    return {"scenario": "after the office's own change (a work-fund expense)",
            "answers": len(times), "answers_updating": updating, "slowest_answer_s": round(max(times), 3),
            "new_figure_after_s": round(shown, 1) if shown is not None else None}


def _work_fund(client) -> str:
    """Indicator 1 (work-fund spending) as the API gives it."""
    return next(i["actual"] for i in client.get(f"/api/v1/indicators?year={YEAR}").json()["indicators"]
                if i["number"] == 1)


def restarted_workers(client, master: int) -> dict:
    """gunicorn replaces its workers (SIGHUP, as a deployment does); the first indicator pages of
    the new workers are timed: they read the stored report instead of computing the year."""
    old = set(children(master))
    os.kill(master, signal.SIGHUP)
    deadline = time.time() + 60
    while time.time() < deadline and (set(children(master)) & old or len(children(master)) < len(old)):
        time.sleep(0.2)
    time.sleep(1)
    times = []
    for path in ("/coord/programme/", "/coord/programme/indicator/6", "/coord/programme/", "/coord/programme/indicator/6"):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append(round(time.perf_counter() - t0, 3))
        assert r.status_code == 200, r.status_code
    return {"scenario": "the first indicator pages after gunicorn replaced its workers", "times_s": times}


def prepare_pages(url: str, work: Path) -> int:
    """A notice to all 50,000 volunteers (its delivery page is the one that never finished), and
    tonight's campaign with 1,000 people on patrol for the board."""
    from sqlalchemy import select

    from app import create_app
    from extensions import db
    from models import Message
    from services.messaging import Audience, send_notice

    now = datetime.now(timezone.utc)
    data = prepare_soak(url, work, now)
    app = create_app({"INSTANCE_PATH": str(work / "instance"), "LOG_LEVEL": "WARNING",
                      "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://")})
    with app.app_context():
        import psycopg
        with psycopg.connect(url) as conn:  # 1,000 on patrol now, checked in at their points
            conn.execute("""INSERT INTO attendances (volunteer_id, event_id, shift_id, point_id, source, status,
                            check_in_at, credited_minutes, work_date, review_status, flags, walk_in, created_at)
                            SELECT a.volunteer_id, s.event_id, s.id, s.point_id, 'scan', 'open', %s, 0, %s, 'none',
                                   '', false, %s
                            FROM assignments a JOIN shifts s ON s.id = a.shift_id
                            WHERE s.event_id = %s AND a.volunteer_id <= 1000""",
                         (now - timedelta(minutes=30), now.astimezone(timezone(timedelta(hours=8))).date(), now,
                          data["event"]))
        send_notice(db.session, text="全体志愿者：年终总结会通知。", audience=Audience("all"), nonce="district-pages",
                    created_by_user_id=None)
        notice = db.session.scalar(select(Message.id).order_by(Message.id.desc()))
        db.session.remove()
        db.engine.dispose()
    analyze(url)
    return notice


def page_list(notice: int) -> list[tuple[str, str]]:
    return [
        ("dashboard (today)", "/coord/"),
        ("tonight's board", "/coord/board/"),
        ("board rows (refresh)", "/coord/board/rows"),
        ("attendance list, first page", "/coord/attendance/"),
        ("review queue", "/coord/attendance/review"),
        ("volunteers list", "/coord/volunteers/"),
        ("volunteers filtered by team", "/coord/volunteers/?team=%E5%B1%85%E5%A7%9401"),
        ("one volunteer", "/coord/volunteers/1"),
        ("campaigns", "/coord/events/"),
        ("one campaign (500 shifts)", "/coord/events/1"),
        ("notices", "/coord/notices/"),
        ("notice to 50,000 (delivery page)", f"/coord/notices/{notice}"),
        ("indicators", "/coord/programme/"),
        ("indicator 4 drill-down (hours per volunteer)", "/coord/programme/indicator/4"),
        ("indicator 6 drill-down", "/coord/programme/indicator/6"),
        ("indicator 7 drill-down", "/coord/programme/indicator/7"),
        ("inbox", "/coord/inbox/"),
        ("my exports", "/coord/exports/"),
        ("action log", "/coord/admin/audit/"),
        ("insurance", "/coord/programme/insurance"),
        ("equipment", "/coord/programme/equipment"),
        ("budget", "/coord/programme/budget"),
        ("digest preview", "/coord/programme/digest"),
        ("points", "/coord/points/"),
        ("API indicators", f"/api/v1/indicators?year={YEAR}"),
    ]


def export_list() -> list[tuple[str, str]]:
    return [
        ("attendance .xlsx", f"/coord/programme/export/attendance.xlsx?year={YEAR}"),
        ("attendance .csv", f"/coord/programme/export/attendance.csv?year={YEAR}"),
        ("hours .xlsx", f"/coord/programme/export/hours.xlsx?year={YEAR}"),
        ("hours .csv", f"/coord/programme/export/hours.csv?year={YEAR}"),
        ("roster .csv", "/coord/volunteers/export.csv"),
        ("roster .xlsx (with ID numbers)", "/coord/volunteers/export.xlsx"),
        ("indicator 4 drill-down .xlsx", "/coord/programme/indicator/4/export.xlsx"),
        ("self-evaluation .xlsx", f"/coord/programme/export/self-evaluation.xlsx?year={YEAR}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--volunteers", type=int, default=VOLUNTEERS)
    k = sub.add_parser("soak")
    k.add_argument("--minutes", type=float, default=10)
    k.add_argument("--rate", type=float, default=50)
    k.add_argument("--keep", action="store_true")
    k.add_argument("--json-out")
    p = sub.add_parser("pages")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json-out")
    args = parser.parse_args()
    {"seed": seed, "soak": soak, "pages": pages}[args.cmd](args)


if __name__ == "__main__":
    main()
