"""Benchmark: Lighthouse 12 mobile performance and accessibility of the scan page.

Starts the app on 127.0.0.1 with a fresh SQLite database holding one point with a shift now and one
signed-in volunteer, then runs Lighthouse (mobile form factor, simulated slow 4G and 4× CPU
slowdown, its defaults) against the poster page twice: signed in (the 签到 button) and not signed
in (the sign-in choices). Prints the median of `--runs` runs per page. Scores are noisy on two
shared cores, so this is a benchmark (docs/performance.md), not a test.

    npm ci --prefix bench/lighthouse      # once: Lighthouse 12 (not needed by the test suite)
    .venv/bin/python bench/lighthouse.py [--runs 3]

Chrome: Debian's chromium (CHROME_PATH overrides).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LIGHTHOUSE = ROOT / "bench" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"


def seed(base: str):
    from extensions import db
    from keys import code_signer
    from models import Assignment, Event, PatrolPoint, Shift, Volunteer
    from services.qr import scan_url
    from services.signin import _new_device

    now = datetime.now(timezone.utc)
    event = Event(name="春节烟花爆竹安全管控", starts_on=date.today() - timedelta(days=1),
                  ends_on=date.today() + timedelta(days=1))
    point = PatrolPoint(code="PJ01", name="周浦塘桥路口", address="浦锦路 × 塘桥路", lat=31.0689, lon=121.5049,
                        radius_m=150)
    vol = Volunteer(name="赵六", phone="13900000006", vest_no="PJ-0006", team="塘桥居委", joined_on=date(2026, 1, 1))
    db.session.add_all([event, point, vol])
    db.session.flush()
    shift = Shift(event_id=event.id, point_id=point.id, starts_at=now - timedelta(minutes=10),
                  ends_at=now + timedelta(hours=3), capacity=10)
    db.session.add(shift)
    db.session.flush()
    db.session.add(Assignment(shift_id=shift.id, volunteer_id=vol.id))
    cookie = _new_device(db.session, vol, "link", "lighthouse", now).device_secret
    db.session.commit()
    return scan_url(base, code_signer(), point), cookie


def lighthouse(url: str, chrome: str, out: Path, headers: dict | None) -> dict:
    cmd = [str(LIGHTHOUSE), url, "--only-categories=performance,accessibility", "--output=json",
           f"--output-path={out}", "--quiet", "--locale=zh",
           "--chrome-flags=--headless=new --no-sandbox --disable-gpu --no-first-run"]
    if headers:
        cmd.append("--extra-headers=" + json.dumps(headers))
    subprocess.run(cmd, check=True, env={**os.environ, "CHROME_PATH": chrome}, timeout=300)
    report = json.loads(out.read_text(encoding="utf-8"))
    cats = report["categories"]
    audits = report["audits"]
    return {"performance": round(cats["performance"]["score"] * 100), "accessibility": round(cats["accessibility"]["score"] * 100),
            "fcp_ms": round(audits["first-contentful-paint"]["numericValue"]),
            "lcp_ms": round(audits["largest-contentful-paint"]["numericValue"]),
            "bytes": round(audits["total-byte-weight"]["numericValue"]),
            "failing": sorted(k for k, a in audits.items()
                              if a.get("score") is not None and a["score"] < 1 and a.get("scoreDisplayMode") == "binary")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        sys.exit("Lighthouse is not installed: npm ci --prefix bench/lighthouse")
    chrome = os.environ.get("CHROME_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chrome:
        sys.exit("chromium not found (apt-get install chromium, or set CHROME_PATH)")

    tmp = Path(tempfile.mkdtemp())
    env = {"DATABASE_URL": f"sqlite:///{tmp / 'lighthouse.db'}", "INSTANCE_PATH": str(tmp / "instance"),
           "LOG_LEVEL": "WARNING", "DEMO": "0"}
    os.environ.update(env)
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT,
                   env={**os.environ}, check=True, capture_output=True)

    from app import create_app
    from tests.live import live_server

    app = create_app()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with live_server(app) as base:
        with app.app_context():
            url, cookie = seed(base)
        for name, headers in (("scan page, signed in", {"Cookie": f"pv_device={cookie}"}),
                              ("scan page, not signed in", None)):
            runs = [lighthouse(url, chrome, tmp / f"run{i}.json", headers) for i in range(args.runs)]
            perf = statistics.median(r["performance"] for r in runs)
            a11y = statistics.median(r["accessibility"] for r in runs)
            print(f"{name}: performance {perf:.0f} (runs {[r['performance'] for r in runs]}), "
                  f"accessibility {a11y:.0f}, FCP {statistics.median(r['fcp_ms'] for r in runs):.0f} ms, "
                  f"LCP {statistics.median(r['lcp_ms'] for r in runs):.0f} ms, "
                  f"{runs[0]['bytes'] / 1024:.1f} KB; failing audits: {runs[0]['failing'] or 'none'}")


if __name__ == "__main__":
    main()
