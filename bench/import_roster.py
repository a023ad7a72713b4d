"""Benchmark: import a 500-volunteer roster (.xlsx) and re-import it (all updates checked).

Usage: .venv/bin/python bench/import_roster.py [--rows 500] [--database-url URL]
Prints timings; the figures recorded in docs/performance.md come from this script.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from config import normalise_database_url  # noqa: E402
from extensions import db  # noqa: E402
from keys import data_cipher  # noqa: E402
from services.imports import import_volunteers  # noqa: E402
from tests.factories import roster_rows, xlsx_bytes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = normalise_database_url(args.database_url or f"sqlite:///{tmp / 'bench.db'}")
    app = create_app({"INSTANCE_PATH": str(tmp), "SQLALCHEMY_DATABASE_URI": url})
    data = xlsx_bytes(roster_rows(args.rows, with_ids=True), text_columns=[4])
    first, second = [], []
    with app.app_context():
        for _ in range(args.rounds):
            if db.engine.dialect.name == "postgresql":
                with db.engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            else:
                db.drop_all()
                with db.engine.begin() as conn:
                    conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            upgrade()
            t0 = time.perf_counter()
            report = import_volunteers(db.session, data, "roster.xlsx", cipher=data_cipher())
            first.append(time.perf_counter() - t0)
            assert report.ok and report.created == args.rows, report.lines()[:5]
            t0 = time.perf_counter()
            report = import_volunteers(db.session, data, "roster.xlsx", cipher=data_cipher())
            second.append(time.perf_counter() - t0)
            assert report.ok and report.unchanged == args.rows
    print(f"database: {url.split(':')[0]}  rows: {args.rows}  rounds: {args.rounds}")
    print(f"first import (all new):   median {statistics.median(first) * 1000:.0f} ms")
    print(f"re-import (all checked):  median {statistics.median(second) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
