"""Benchmark: how long a notice to N linked volunteers takes to go out through the outbox.

Starts a local fake Bot API server (tests/fake_telegram.py) that answers every `--429-every`-th
sendMessage with 429 and `retry_after`, a fresh database with N volunteers linked to chats, and the
real sender (`python -m delivery`, as its unit starts it) in its own process; queues one notice and times
it until the server holds one copy for every chat. Prints the time against the target
1.2 × (N ÷ rate + the retry_after delays imposed) and the highest per-second rate the server saw.

    .venv/bin/python bench/broadcast.py [--volunteers 500] [--rate 25] [--database-url URL]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_telegram import FakeTelegram, max_in_window  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volunteers", type=int, default=500)
    parser.add_argument("--rate", type=int, default=25)
    parser.add_argument("--every-429", type=int, default=100)
    parser.add_argument("--retry-after", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{tmp / 'broadcast.db'}"
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp / "instance"), "LOG_LEVEL": "WARNING",
           "OUTBOX_RATE_PER_SECOND": str(args.rate)}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "INSTANCE_PATH", "LOG_LEVEL")})
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)

    from sqlalchemy import text

    from app import create_app
    from extensions import db
    from models import ChatLink, Volunteer
    from services.messaging import Audience, send_notice

    app = create_app()
    with app.app_context():
        for table in ("outbox", "message_recipients", "messages", "chat_links"):
            db.session.execute(text(f"DELETE FROM {table}"))  # nosec B608 # table names come from the fixed tuple above
        db.session.execute(text("DELETE FROM volunteers WHERE phone LIKE '1370%'"))
        vols = [Volunteer(name=f"群发{i:04d}", phone=f"1370{i:07d}", joined_on=date.today())
                for i in range(args.volunteers)]
        db.session.add_all(vols)
        db.session.flush()
        db.session.add_all([ChatLink(chat_id=500000 + i, volunteer_id=v.id) for i, v in enumerate(vols)])
        db.session.commit()

    fake = FakeTelegram(retry_after=args.retry_after,
                        fault=lambda m, p, i: "429" if args.every_429 and i % args.every_429 == args.every_429 - 1 else None)
    fake.start()
    env.update(TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.base_url)
    proc = subprocess.Popen([sys.executable, "-m", "delivery"], cwd=ROOT, env=env)  # as its unit starts it
    try:
        fake.wait_for(lambda: [c for c in fake.calls if c.method == "getMe"], timeout=30)
        time.sleep(1.0)
        with app.app_context():
            t0 = time.monotonic()
            send_notice(db.session, text="演练：全员今晚 20:00 到岗", audience=Audience("all"), nonce=f"bench-{t0}",
                        created_by_user_id=None)
        fake.wait_for(lambda: len({c.params["chat_id"] for c in fake.sent()}) >= args.volunteers, timeout=600)
        done = max(c.at for c in fake.sent())
        elapsed = done - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        fake.stop()
    n429 = sum(1 for c in fake.calls if c.outcome == "429")
    bound = 1.2 * (args.volunteers / args.rate + n429 * args.retry_after)
    copies: dict[str, int] = {}
    for c in fake.sent():
        copies[c.params["chat_id"]] = copies.get(c.params["chat_id"], 0) + 1
    summary = {"database": url.split(":")[0], "volunteers": args.volunteers, "rate": args.rate,
               "responses_429": n429, "retry_after_s": args.retry_after, "seconds": round(elapsed, 1),
               "target_seconds": round(bound, 1), "within_target": elapsed <= bound,
               "max_sends_in_any_second": max_in_window([c.at for c in fake.calls if c.method == "sendMessage"]),
               "chats_with_more_than_one_copy": sum(1 for n in copies.values() if n > 1)}
    print("SUMMARY " + json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
