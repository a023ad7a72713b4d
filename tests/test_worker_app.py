"""The bot, the sender and the scheduler run on `create_app(worker=True)` (`python -m bot|delivery|
scheduler`): the same settings and database, without the web layer, the CLI and Alembic, which
were a quarter of their memory (docs/performance.md)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("alembic", "flask_migrate", "redis", "openpyxl", "reportlab", "flask_smorest", "web", "cli.programme")


def _run(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "INSTANCE_PATH": str(tmp_path / "instance"),
           "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/13"}
    argv = [sys.executable, "-c", code] if code else [sys.executable, *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_worker_app_leaves_the_web_the_cli_and_alembic_out(tmp_path):
    done = _run("import sys\nfrom app import create_app\napp = create_app(worker=True)\n"
                "import bot.app, bot.handlers, delivery.runner, delivery.sms, delivery.wecom\n"
                f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
                "print(sorted(app.blueprints), 'db' in app.cli.commands)\n"
                "import logging; print(logging.getLogger('httpx').getEffectiveLevel())", tmp_path)
    assert done.returncode == 0, done.stderr
    # ... and httpx, whose INFO lines hold the Bot API URL with the token, is quiet here too.
    assert done.stdout.splitlines() == ["[]", "[] False", "30"]


def test_the_full_app_still_has_them(tmp_path):
    """The check above can fail: the same probe on the web's app finds every one of them."""
    done = _run("import sys\nfrom app import create_app\napp = create_app()\n"
                f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))", tmp_path)
    assert done.returncode == 0, done.stderr
    found = set(ast.literal_eval(done.stdout.strip()))
    assert {"alembic", "flask_migrate", "redis", "web", "cli.programme"} <= found, found


@pytest.mark.parametrize("module, words", [("bot", "--with-sender"), ("delivery", "Usage: python -m delivery"),
                                           ("scheduler", "Usage: python -m scheduler")])
def test_each_unit_command_is_the_flask_command(tmp_path, module, words):
    done = _run("", tmp_path, "-m", module, "--help")
    assert done.returncode == 0, done.stderr
    assert words in done.stdout
