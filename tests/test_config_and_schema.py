from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import create_app
from extensions import db

ROOT = Path(__file__).resolve().parent.parent


def test_keys_are_generated_once_and_kept_in_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATA_KEY", raising=False)
    cfg = {"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"}
    first = create_app(cfg)
    second = create_app(cfg)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 40
    assert (tmp_path / "secret_key").read_text().strip() == first.config["SECRET_KEY"]
    assert oct((tmp_path / "data_key").stat().st_mode & 0o777) == "0o600"
    other = tmp_path / "other"
    third = create_app({**cfg, "INSTANCE_PATH": str(other)})
    assert third.config["SECRET_KEY"] != first.config["SECRET_KEY"]


def test_environment_overrides_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://vest.example.cn/")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert app.config["PUBLIC_BASE_URL"] == "https://vest.example.cn"
    assert not (tmp_path / "secret_key").exists()


def test_postgres_urls_use_psycopg3(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1/db")
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@127.0.0.1/db"
    assert app.config["DEMO"] is False
    monkeypatch.setenv("DEMO", "1")
    assert create_app({"INSTANCE_PATH": str(tmp_path)}).config["DEMO"] is True


def test_sqlite_runs_in_wal_mode(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(db.text("PRAGMA foreign_keys")).scalar() == 1


def test_no_diff_between_migrations_and_models(app):
    """Every schema change is a migration: the migrated database matches the models."""
    with app.app_context(), db.engine.connect() as conn:
        def include_object(obj, name, type_, reflected, compare_to):
            table = obj if type_ == "table" else getattr(obj, "table", None)
            return getattr(table, "name", name) != "apscheduler_jobs"  # APScheduler's, own migration

        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        diff = compare_metadata(ctx, db.metadata)
    assert diff == []
