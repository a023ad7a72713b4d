"""bandit runs in `make lint` (and so in `make test`) at medium severity and above (issue 10)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BANDIT = [sys.executable, "-m", "bandit", "-q", "-c", str(ROOT / "bandit.yaml"), "--severity-level", "medium"]


def test_make_lint_runs_bandit_with_the_project_config():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "bandit -q -c bandit.yaml -r . --severity-level medium" in lint
    assert "\ntest: lint" in makefile
    assert "bandit==" in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")


def test_a_planted_medium_finding_fails_and_an_explained_one_passes(tmp_path):
    if shutil.which("bandit") is None and subprocess.run([sys.executable, "-m", "bandit", "--version"],
                                                         capture_output=True).returncode != 0:
        pytest.skip("bandit is not installed (pip install -r requirements-dev.txt)")
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n")
    found = subprocess.run([*BANDIT, "-r", str(tmp_path)], capture_output=True, text=True)
    assert found.returncode == 1 and "B602" in found.stdout
    bad.write_text("import subprocess\n\ndef run(cmd):\n"
                   "    return subprocess.call(cmd, shell=True)  # nosec B602 # fixed command, no input\n")
    assert subprocess.run([*BANDIT, "-r", str(tmp_path)], capture_output=True, text=True).returncode == 0
