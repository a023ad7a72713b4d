"""Benchmark: each list export's time and peak memory at district scale.

Seeds a synthetic programme year with the indicators benchmark's seeding (N volunteers, about 10
patrols each) into a fresh database, or uses one already seeded (`--reuse`), then builds every
list export (attendance, hours, expenditures, roster) in each format, each in a fresh child
process, exactly as both export paths do (the row count, then the streamed tables written to a
file: services/export_jobs.py). Each child reports:

- `count_s`: the COUNT queries that decide between the request and the background;
- `build_s`: building and writing the file;
- `rss_before_mb`: the child's resident memory once the app is loaded, before the export;
- `peak_rss_mb`: the child's peak resident memory (VmHWM) after it — the figure to hold against
  "no worker above 300 MB RSS";
- `rows`, `file_mb`.

    .venv/bin/python bench/exports.py [--volunteers 5000] [--database-url postgresql://...] [--reuse]

Without `--reuse` it drops and recreates the schema of the database it is given. Linux only
(/proc/self/status); no extra dependency.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess  # nosec B404 - runs this same script as a child
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

YEAR = 2025
TODAY = date(YEAR + 1, 1, 10)
KINDS = ("attendance", "hours", "expenditures", "roster")
FORMATS = ("xlsx", "csv")


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _app(url: str, instance: Path):
    from app import create_app
    from config import normalise_database_url

    return create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": normalise_database_url(url),
                       "LOG_LEVEL": "WARNING"})


def child(url: str, instance: Path, kind: str, fmt: str) -> dict:
    """One export in this (fresh) process; what the export worker and the web both run."""
    from extensions import db
    from keys import data_cipher
    from services.export_jobs import build_tables, count_rows
    from services.spreadsheet import write_table

    app = _app(url, instance)
    params = {"year": YEAR} if kind != "roster" else {}
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))  # connect before the baseline
        before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        total = count_rows(db.session, kind, params, today=TODAY)
        t1 = time.perf_counter()
        with tempfile.NamedTemporaryFile(suffix="." + fmt) as out:
            rows = write_table(out, fmt, build_tables(db.session, kind, params, today=TODAY, cipher=data_cipher()))
            out.flush()
            size = os.path.getsize(out.name)
        t2 = time.perf_counter()
        db.session.rollback()
    return {"kind": kind, "format": fmt, "rows": rows, "counted": total, "count_s": round(t1 - t0, 3),
            "build_s": round(t2 - t1, 2), "rss_before_mb": round(before / 1024, 1),
            "peak_rss_mb": round(_status_kb("VmHWM") / 1024, 1), "file_mb": round(size / 1e6, 2)}


def seed(url: str, instance: Path, volunteers: int) -> float:
    import indicators  # bench/indicators.py: the same synthetic year, with explicit ids and the sequence fix

    app = _app(url, instance)
    with app.app_context():
        indicators.reset()
        built = indicators.build(volunteers, random.Random(volunteers))
        indicators.check_later_inserts_work()
    return built


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volunteers", type=int, default=5000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--reuse", action="store_true", help="use the database as it is (seeded before)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--instance", default=None)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    instance = Path(args.instance or tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{instance / 'exports.db'}"
    if args.child:
        print(json.dumps(child(url, instance, *args.child)), flush=True)
        return
    if not args.reuse:
        print(json.dumps({"seeded_volunteers": args.volunteers, "seed_s": round(seed(url, instance, args.volunteers), 1)}),
              flush=True)
    results = []
    for kind in args.kinds.split(","):
        for fmt in args.formats.split(","):
            out = subprocess.run([sys.executable, __file__, "--database-url", url, "--instance", str(instance),
                                  "--child", kind, fmt], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["database"] = url.split(":")[0]
            results.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    print("SUMMARY " + json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
