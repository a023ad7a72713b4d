"""Benchmark: computing the 14 indicators for one programme year at three sizes.

Builds a synthetic programme in a fresh database: N volunteers, each with about 10 patrols in the
year (credited per day), insurance covers, equipment issues, expenditures and a survey round, then
times `compute_indicators` (median of 3 runs) and the weekly digest text. Sizes default to 500,
5,000 and 50,000 volunteers.

    .venv/bin/python bench/indicators.py [--sizes 500,5000,50000] [--database-url postgresql://...]

It drops and recreates the schema of the database it is given.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from app import create_app  # noqa: E402
from config import normalise_database_url  # noqa: E402
from extensions import db  # noqa: E402
from models import (Attendance, AttendanceCredit, EquipmentDelivery, EquipmentIssue, Event, Expenditure,  # noqa: E402
                    InsuranceCover, InsurancePolicy, PatrolPoint, SurveyAnswer, SurveyRound, Volunteer)
from services.digest import digest_text  # noqa: E402
from services.indicators import compute_indicators  # noqa: E402

YEAR = 2025
PATROLS = 10


def reset() -> None:
    db.session.remove()  # its open transaction would block the DROP below
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
    upgrade()


def build(n: int, rng: random.Random) -> float:
    t0 = time.perf_counter()
    s = db.session
    s.execute(insert(Volunteer), [{"name": f"压测{i}", "phone": f"1{i:010d}", "team": f"居委{i % 20}",
                                   "vest_no": f"V{i}", "status": "active", "card_version": 1,
                                   "joined_on": date(YEAR, 1, 1)} for i in range(1, n + 1)])
    s.execute(insert(PatrolPoint), [{"code": f"P{i}", "name": f"点位{i}", "radius_m": 150, "active": True,
                                     "key_version": 1} for i in range(1, 41)])
    s.execute(insert(Event), [{"name": f"活动{m}", "starts_on": date(YEAR, m, 1), "ends_on": date(YEAR, m, 28)}
                              for m in range(1, 13)])
    s.commit()
    att_rows, credit_rows = [], []
    aid = 0
    for vid in range(1, n + 1):
        for _k in range(rng.randint(PATROLS - 4, PATROLS + 4)):
            day = date(YEAR, 1, 1) + timedelta(days=rng.randrange(365))
            start = datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc)
            minutes = rng.choice((60, 90, 120, 180))
            aid += 1
            att_rows.append({"id": aid, "volunteer_id": vid, "event_id": day.month, "point_id": rng.randint(1, 40),
                             "source": "scan", "status": "closed", "check_in_at": start,
                             "check_out_at": start + timedelta(minutes=minutes), "credited_minutes": minutes,
                             "work_date": day, "review_status": "flagged" if rng.random() < 0.01 else "none",
                             "flags": "", "walk_in": False})
            credit_rows.append({"attendance_id": aid, "volunteer_id": vid, "work_date": day, "minutes": minutes})
        if len(att_rows) >= 20000:
            s.execute(insert(Attendance), att_rows)
            s.execute(insert(AttendanceCredit), credit_rows)
            s.commit()
            att_rows, credit_rows = [], []
    if att_rows:
        s.execute(insert(Attendance), att_rows)
        s.execute(insert(AttendanceCredit), credit_rows)
    s.add(InsurancePolicy(id=1, insurer="保险", policy_no="B-1", cover_start=date(YEAR, 1, 1), cover_end=date(YEAR, 12, 31),
                          premium_per_person=Decimal("9.5")))
    s.flush()
    s.execute(insert(InsuranceCover), [{"policy_id": 1, "volunteer_id": v} for v in range(1, n + 1) if v % 50])
    s.add(EquipmentDelivery(supplier="厂", delivered_on=date(YEAR, 1, 15), sets=n, unit_cost=Decimal("58"), passed_sets=n))
    s.execute(insert(EquipmentIssue), [{"volunteer_id": v, "issued_on": date(YEAR, 2, 1), "kit": "马甲", "status": "issued"}
                                       for v in range(1, n + 1)])
    s.execute(insert(Expenditure), [{"year": YEAR, "line": "work_fund", "spent_on": date(YEAR, m, 5),
                                     "amount": Decimal("1000"), "description": "经费"} for m in range(1, 13)])
    s.add(SurveyRound(id=1, name="年中", question="?", opens_at=datetime(YEAR, 6, 1, tzinfo=timezone.utc)))
    s.flush()
    s.execute(insert(SurveyAnswer), [{"round_id": 1, "volunteer_id": v, "score": rng.choice((5, 5, 4, 4, 4, 3)),
                                      "channel": "web", "awaiting_comment": False,
                                      "answered_at": datetime(YEAR, 6, 2, tzinfo=timezone.utc)}
                                     for v in range(1, n + 1) if v % 3])
    s.commit()
    if db.engine.dialect.name == "postgresql":
        sync_sequences()
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - t0


def sync_sequences() -> None:
    """Rows above were inserted with explicit ids (attendances, the policy, the survey round):
    PostgreSQL's sequences did not move, so the next ordinary insert would collide. Move each
    table's sequence past its largest id."""
    with db.engine.begin() as conn:
        for table in db.metadata.sorted_tables:
            if "id" not in table.c or not table.c.id.primary_key:
                continue
            sql = (f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # nosec B608 - names from our own metadata
                   f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)")
            conn.execute(text(sql))


def check_later_inserts_work() -> None:
    """What the sequence fix is for: an ordinary insert after the bulk load gets a fresh id."""
    db.session.add(SurveyRound(name="检查", question="?", opens_at=datetime(YEAR, 7, 1, tzinfo=timezone.utc)))
    db.session.add(Attendance(volunteer_id=1, source="scan", status="closed", work_date=date(YEAR, 7, 1),
                              check_in_at=datetime(YEAR, 7, 1, 10, tzinfo=timezone.utc), credited_minutes=0,
                              review_status="none", flags="", walk_in=False))
    db.session.flush()
    db.session.rollback()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,5000,50000")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = normalise_database_url(args.database_url or f"sqlite:///{tmp / 'ind.db'}")
    app = create_app({"INSTANCE_PATH": str(tmp), "SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING"})
    results = []
    with app.app_context():
        for n in (int(x) for x in args.sizes.split(",")):
            reset()
            built = build(n, random.Random(n))
            check_later_inserts_work()
            times = []
            for _r in range(args.rounds):
                t0 = time.perf_counter()
                report = compute_indicators(db.session, YEAR, today=date(YEAR + 1, 1, 10))
                times.append(time.perf_counter() - t0)
                db.session.rollback()
            t0 = time.perf_counter()
            digest_text(db.session, now=datetime(YEAR, 12, 29, 1, tzinfo=timezone.utc))
            digest_time = time.perf_counter() - t0
            attendances = db.session.execute(text("SELECT count(*) FROM attendances")).scalar()
            row = {"database": url.split(":")[0], "volunteers": n, "attendances": attendances,
                   "build_s": round(built, 1), "indicators_s": round(statistics.median(times), 3),
                   "digest_s": round(digest_time, 3), "mean_hours": report.row(6).value}
            results.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    print("SUMMARY " + json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
