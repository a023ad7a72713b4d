"""Coordinator accounts."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models.user import ROLES, CoordSession, User
from services.clock import Clock, system_clock
from services.transactions import bookkeeping_commit
from services.errors import DomainError
from services.i18n import _
from services.lengths import check_length
from services.tokens import hash_secret, is_secret_shaped, new_secret

MIN_PASSWORD_LENGTH = 8
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: str


def create_user(session: Session, username: str, password: str, role: str,
                display_name: str | None = None) -> UserInfo:
    username = username.strip()
    if not _USERNAME_RE.match(username):
        raise DomainError("bad_username", _("用户名只能包含字母、数字和 _ . -，2 到 64 个字符"))
    if role not in ROLES:
        raise DomainError("bad_role", _("角色必须是 admin 或 coordinator"))
    check_length(display_name, 64, _("名称"))
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError("weak_password", _("密码至少 %(n)d 位", n=MIN_PASSWORD_LENGTH))
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise DomainError("username_taken", _("用户名“%(u)s”已存在", u=username))
    user = User(username=username, role=role, display_name=display_name,
                password_hash=generate_password_hash(password))
    session.add(user)
    session.commit()
    return UserInfo(user.id, user.username, user.role)


def set_password(session: Session, username: str, password: str) -> None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise DomainError("unknown_user", _("用户“%(u)s”不存在", u=username))
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError("weak_password", _("密码至少 %(n)d 位", n=MIN_PASSWORD_LENGTH))
    user.password_hash = generate_password_hash(password)
    # A new password ends every session (a password is reset because someone else may know it).
    _end_sessions(session, user.id, by="password_changed", now=system_clock())
    session.commit()


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    """A hash made like real ones, checked when the user name is unknown (see `verify_password`)."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = generate_password_hash(secrets.token_hex(16))
    return _DUMMY_HASH


def verify_password(session: Session, username: str, password: str) -> User | None:
    """The user, or None. A password hash is checked on every path, so the answer takes as long for
    an unknown or disabled user name as for a real one: timing tells nothing about which names exist."""
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    matches = check_password_hash(user.password_hash if user is not None else _dummy_hash(), password or "")
    if user is None or not user.active or not matches:
        return None
    return user


# Coordinator sessions: the cookie carries only a random secret; the server decides whether it is
# still good, so logging out, an admin, a password change or disabling the account ends it.
SESSION_SEEN_GRANULARITY = timedelta(minutes=5)


@dataclass(frozen=True)
class SessionInfo:
    id: int
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime | None


def start_session(session: Session, user_id: int, *, user_agent: str | None = None,
                  clock: Clock = system_clock) -> str:
    """A new server-side session for a user who just proved their password; returns its secret."""
    secret = new_secret()
    now = clock()
    session.add(CoordSession(user_id=user_id, token_hash=hash_secret(secret), created_at=now, last_seen_at=now,
                             user_agent=(user_agent or "")[:500] or None))
    user = session.get(User, user_id)
    if user is not None:
        user.last_login_at = now
    session.commit()
    return secret


def session_user(session: Session, secret: str | None, *, max_age: timedelta,
                 clock: Clock = system_clock) -> User | None:
    """The active user of a session secret, or None (unknown, ended, too old, user disabled)."""
    if not is_secret_shaped(secret):
        return None
    row = session.scalar(select(CoordSession).where(CoordSession.token_hash == hash_secret(secret)))
    if row is None or row.ended_at is not None:
        return None
    now = clock()
    if now - row.created_at > max_age:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.last_seen_at is None or now - row.last_seen_at > SESSION_SEEN_GRANULARITY:
        row.last_seen_at = now
        bookkeeping_commit(session)
    return user


def end_session(session: Session, secret: str | None, *, by: str, clock: Clock = system_clock) -> bool:
    """Log out: the session's secret is refused from now on, wherever a copy of the cookie is."""
    if not is_secret_shaped(secret):
        return False
    ended = session.execute(update(CoordSession).where(CoordSession.token_hash == hash_secret(secret),
                                                       CoordSession.ended_at.is_(None))
                            .values(ended_at=clock(), ended_by=by)).rowcount
    session.commit()
    return ended == 1


def _end_sessions(session: Session, user_id: int, *, by: str, now: datetime) -> int:
    return session.execute(update(CoordSession).where(CoordSession.user_id == user_id, CoordSession.ended_at.is_(None))
                           .values(ended_at=now, ended_by=by)).rowcount


def end_all_sessions(session: Session, user_id: int, *, by: str, clock: Clock = system_clock) -> int:
    """An admin signs an account out everywhere (a lost laptop, a departing colleague)."""
    if session.get(User, user_id) is None:
        raise DomainError("unknown_user", _("账号不存在"))
    count = _end_sessions(session, user_id, by=by, now=clock())
    session.commit()
    return count


def open_session_counts(session: Session) -> dict[int, int]:
    """Sessions not yet ended, per user, for the accounts page."""
    rows = session.execute(select(CoordSession.user_id, func.count(CoordSession.id))
                           .where(CoordSession.ended_at.is_(None)).group_by(CoordSession.user_id))
    return {user_id: count for user_id, count in rows}


def _other_admins(session: Session, user_id: int) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count(User.id)).where(User.role == "admin", User.active.is_(True),
                                                            User.id != user_id)) or 0


def set_role(session: Session, user_id: int, role: str, *, acting_user_id: int) -> None:
    """Change a role; the last active admin cannot demote themselves out of the admin page."""
    user = session.get(User, user_id)
    if user is None:
        raise DomainError("unknown_user", _("账号不存在"))
    if role not in ROLES:
        raise DomainError("bad_role", _("角色必须是 admin 或 coordinator"))
    if user.role == "admin" and role != "admin" and _other_admins(session, user_id) == 0:
        raise DomainError("last_admin", _("至少要保留一个启用的管理员账号"))
    user.role = role
    session.commit()


def set_active(session: Session, user_id: int, active: bool, *, acting_user_id: int) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise DomainError("unknown_user", _("账号不存在"))
    if not active and user.role == "admin" and _other_admins(session, user_id) == 0:
        raise DomainError("last_admin", _("至少要保留一个启用的管理员账号"))
    if not active and user_id == acting_user_id:
        raise DomainError("self_disable", _("不能停用自己正在使用的账号"))
    user.active = active
    if not active:
        _end_sessions(session, user_id, by=f"disabled_by:{acting_user_id}", now=system_clock())
    session.commit()


def set_team(session: Session, user_id: int, team: str | None) -> None:
    """The team (居委) a leader leads: they are told of its volunteers' leave requests."""
    user = session.get(User, user_id)
    if user is None:
        raise DomainError("unknown_user", _("账号不存在"))
    team = (team or "").strip()
    if len(team) > 64:
        raise DomainError("too_long", _("居委名称最多 64 个字"))
    user.team = team or None
    session.commit()
