"""Fixtures: one app per test session on SQLite (default) or on `TEST_DATABASE_URL`.

The schema is built by the Alembic migrations (so they are tested too) and every table is
emptied after each test.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from config import normalise_database_url
from extensions import db, limiter
from keys import data_cipher

ROOT = Path(__file__).resolve().parent.parent


def _reset_schema() -> None:
    """Start from an empty database, whatever an earlier run left behind."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        db.drop_all()
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{instance / 'test.db'}"
    application = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(url),
        "PUBLIC_BASE_URL": "http://pingan.test",
        "DEMO": False,
    })
    with application.app_context():
        _reset_schema()
        upgrade(directory=str(ROOT / "migrations"))
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(app):
    yield
    with app.app_context():
        limiter.reset()
        db.session.rollback()
        db.session.remove()
        tables = ["apscheduler_jobs"] + [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def session(ctx):
    return db.session


@pytest.fixture
def cipher(ctx):
    return data_cipher()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client, path: str = "/coord/login") -> str:
    """A CSRF token for this client's session, read from a page like a browser would."""
    page = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


class Auth:
    """Sign a test client in as a coordinator, an admin or a volunteer's phone."""

    def __init__(self, app, client):
        self.app, self.client = app, client

    def user(self, username: str = "coord", role: str = "coordinator", password: str = "password-123"):
        from services.users import create_user

        with self.app.app_context():
            create_user(db.session, username, password, role)
        return username, password

    def login(self, username: str = "coord", role: str = "coordinator", password: str = "password-123"):
        self.user(username, role, password)
        token = csrf_from(self.client)
        resp = self.client.post("/coord/login", data={"username": username, "password": password,
                                                     "csrf_token": token})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return resp

    def volunteer(self, name: str = "张三", phone: str = "13900000001", vest_no: str = "PJ-0001", team: str = "塘口居委"):
        """Create a volunteer and sign this client's "phone" in with a one-time link."""
        from models import Volunteer
        from services.signin import issue_login_link
        from datetime import date

        with self.app.app_context():
            vol = Volunteer(name=name, phone=phone, vest_no=vest_no, team=team, joined_on=date(2026, 1, 1))
            db.session.add(vol)
            db.session.commit()
            issued = issue_login_link(db.session, vol.id, base_url="http://pingan.test", created_by="test")
            secret = issued.url.rsplit("/", 1)[1]
            vol_id = vol.id
        page = self.client.get(f"/login/{secret}")
        assert page.status_code == 200
        resp = self.client.post(f"/login/{secret}", data={"csrf_token": CSRF_RE.search(page.get_data(as_text=True)).group(1)})
        assert resp.status_code == 302
        return vol_id


@pytest.fixture
def auth(app, client):
    return Auth(app, client)
