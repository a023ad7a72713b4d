"""Flask extensions, created unbound and initialised in `create_app`.

Plumbing only: nothing here imports from `services/` (the key factories are in `keys.py`, the
cipher in `crypto.py`), so the domain layer can never be pulled in by the app's set-up. Flask-Migrate
is not here: it brings Alembic, which only the web and the CLI need (`create_app(worker=True)`).
"""
from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase
from flask_sqlalchemy import SQLAlchemy

# Stable constraint names make Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
babel = Babel()
csrf = CSRFProtect()
# Storage comes from RATELIMIT_STORAGE_URI (memory:// by default; redis:// for several workers).
limiter = Limiter(key_func=get_remote_address, default_limits=[])

