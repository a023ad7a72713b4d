"""A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free port, for the fault tests: it can be
killed and restarted at will, which the shared server must never be."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def require_cluster_tools() -> Path:
    path = pg_bin()
    if path is None:
        pytest.skip("a throwaway PostgreSQL cluster needs initdb: apt-get install postgresql (or run make faults as root)")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("initdb refuses root and runuser is missing")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayCluster:
    def __init__(self) -> None:
        self.bin = require_cluster_tools()
        # Not under pytest's tmp_path: that is private to root, and the cluster belongs to postgres.
        self.base = Path(tempfile.mkdtemp(prefix="pingan-faults-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        os.chmod(self.base, 0o700)
        if os.geteuid() == 0:  # initdb will not run as root
            shutil.chown(self.base, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}\n{done.stderr}")
        return done

    def init(self) -> "ThrowawayCluster":
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
                  "--no-locale")
        return self.start()

    def start(self) -> "ThrowawayCluster":
        # fsync off: a killed server still keeps every commit (they are in the OS's cache); only a
        # machine crash would lose them, which is not what these tests simulate.
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", opts, "-w", "-t", "60",
                  "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
