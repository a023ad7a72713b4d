"""Backups of the service database and their restore, plus the retention of nightly backups.

PostgreSQL is dumped with `pg_dump` in its custom format (compressed, restorable table by table with
`pg_restore`, consistent while the service keeps writing); SQLite with its online backup API, which
copies a consistent snapshot page by page while scans go on (copying the file itself could catch a
half-written WAL). A backup is first written to a temporary name beside the target and renamed
only once complete and verified, so a crash or a full disk never leaves a file that looks like a
good backup.

Not in a database backup, on purpose: `instance/secret_key` (signs the printed posters) and
`instance/data_key` (decrypts ID-card numbers). Keep those apart from the dumps (docs/deploy.md).
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from services.errors import DomainError

BACKUP_PREFIX = "pingan-"
BACKUP_NAME_RE = re.compile(r"^pingan-\d{8}T\d{6}Z\.(dump|sqlite3)$")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    engine: str


def engine_of(database_url: str) -> str:
    return "postgresql" if make_url(database_url).get_backend_name() == "postgresql" else "sqlite"


def libpq_url(database_url: str, *, with_password: bool = True) -> str:
    """The SQLAlchemy URL as a libpq URI (no `+psycopg` driver part)."""
    url = make_url(database_url).set(drivername="postgresql")
    if not with_password:
        url = url.set(password=None)
    return url.render_as_string(hide_password=False)


def _pg_env(database_url: str) -> dict[str, str]:
    """The password goes to pg_dump in its environment, never on a command line `ps` shows."""
    env = dict(os.environ)
    password = make_url(database_url).password
    if password:
        env["PGPASSWORD"] = str(password)
    return env


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if not url.database or url.database == ":memory:":
        raise DomainError("backup_unsupported", "an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise DomainError("backup_tool_missing",
                          f"{name} not found: install PostgreSQL's client tools (apt-get install postgresql-client)")
    return path


def _run(args: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        # libpq prints the URI only when asked; stderr never holds the password.
        raise DomainError("backup_failed", f"{Path(args[0]).name} failed: {done.stderr.strip()[-2000:]}")


def backup_file_name(now: datetime, engine: str) -> str:
    return f"{BACKUP_PREFIX}{now.strftime('%Y%m%dT%H%M%SZ')}.{'dump' if engine == 'postgresql' else 'sqlite3'}"


def backup(database_url: str, out: Path) -> BackupResult:
    """Write a consistent backup of the database to `out` (replaced only once complete)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    engine = engine_of(database_url)
    try:
        if engine == "postgresql":
            _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  "--file", str(tmp), "--dbname", libpq_url(database_url, with_password=False)],
                 env=_pg_env(database_url))
            _run([_pg_tool("pg_restore"), "--list", str(tmp)])  # a readable archive, not a truncated one
        else:
            src = sqlite3.connect(f"file:{sqlite_path(database_url)}?mode=ro", uri=True)
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
                if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise DomainError("backup_failed", "the SQLite copy failed its integrity check")
            finally:
                dst.close()
                src.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupResult(path=out, size=out.stat().st_size, engine=engine)


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists():
        return False
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0] > 0


def _pg_has_tables(database_url: str) -> bool:
    import psycopg

    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] > 0


def restore(database_url: str, backup_path: Path, *, replace: bool = False) -> str:
    """Restore a backup into the database. An existing non-empty database is only replaced when
    asked (`replace`): restoring over live data by mistake would lose everything since the dump."""
    backup_path = Path(backup_path)
    if not backup_path.is_file():
        raise DomainError("backup_missing", f"no backup file at {backup_path}")
    engine = engine_of(database_url)
    with backup_path.open("rb") as fh:
        is_pg_dump = fh.read(5) == b"PGDMP"
    if (engine == "postgresql") != is_pg_dump:
        raise DomainError("backup_mismatch", "this backup is of the other kind of database "
                                             f"({'PostgreSQL' if is_pg_dump else 'SQLite'})")
    if engine == "postgresql":
        if _pg_has_tables(database_url) and not replace:
            raise DomainError("database_not_empty", "the database already has tables: restore into a new "
                                                    "database, or pass --replace to overwrite it")
        args = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction",
                "--exit-on-error", "--dbname", libpq_url(database_url, with_password=False)]
        if replace:
            args[1:1] = ["--clean", "--if-exists"]
        _run(args + [str(backup_path)], env=_pg_env(database_url))
        return engine
    target = sqlite_path(database_url)
    if _sqlite_has_tables(target) and not replace:
        raise DomainError("database_not_empty", "the database already has tables: restore into a new "
                                                "database, or pass --replace to overwrite it")
    src = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    try:
        if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise DomainError("backup_corrupt", "the backup file failed SQLite's integrity check")
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # one transaction on the target: all pages or none
        finally:
            dst.close()
    finally:
        src.close()
    return engine


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest nightly backups (only files this module named)."""
    files = sorted((p for p in Path(directory).iterdir() if BACKUP_NAME_RE.match(p.name)), key=lambda p: p.name)
    doomed = files[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def nightly(database_url: str, directory: Path, *, keep: int, now: datetime) -> BackupResult:
    """The scheduler's nightly backup: a new time-stamped file, then the retention."""
    result = backup(database_url, Path(directory) / backup_file_name(now, engine_of(database_url)))
    prune(Path(directory), keep)
    return result
