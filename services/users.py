"""Coordinator accounts."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models.user import ROLES, User
from services.errors import DomainError
from services.i18n import _

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
    session.commit()


def verify_password(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        return None
    return user


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
