"""Text that does not fit its column is bad input, not a crash.

PostgreSQL enforces VARCHAR lengths (SQLite does not), so a 300-character document title used to
be a 500 on PostgreSQL and silently stored on SQLite. Services check the fields people type with
`check_length`; `install_length_guard` adds a last line for every ORM insert or update: before
each flush, every String column with a length is compared with the value about to be written,
and a DomainError (400 on the web) is raised instead of a database error.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import String, event

from services.text import strip_controls
from sqlalchemy.orm import Session

from services.errors import DomainError
from services.i18n import _

# Column names as people see them; any other column is named by its table and column.
LABELS = {
    "title": "标题", "filename": "文件名", "content_type": "文件类型", "name": "名称", "note": "备注",
    "description": "事项", "payee": "收款方", "voucher_no": "凭证号", "insurer": "保险公司", "policy_no": "保单号",
    "supplier": "供应商", "inspection_note": "验收说明", "kit": "装备", "source": "来源", "code": "编号",
    "address": "地址", "username": "用户名", "display_name": "名称", "audience": "发送对象", "team": "所属居委",
    "vest_no": "马甲编号", "phone": "手机号",
}


def too_long(label: str, limit: int) -> DomainError:
    return DomainError("too_long", _("%(label)s过长（最多 %(n)d 个字）", label=label, n=limit))


def check_length(value: str | None, limit: int, label: str) -> str | None:
    """Return the value unchanged, or raise `too_long` (characters, as VARCHAR counts them)."""
    if value is not None and len(value) > limit:
        raise too_long(label, limit)
    return value


def column_limit(model: Any, attr: str) -> int:
    return model.__table__.c[attr].type.length


def check_object(obj: Any) -> None:
    table = getattr(obj, "__table__", None)
    if table is None:
        return
    for column in table.columns:
        if not isinstance(column.type, String):
            continue
        value = obj.__dict__.get(column.key)
        if isinstance(value, str) and strip_controls(value) != value:
            # Typed text (every form) loses its control characters before it is stored.
            setattr(obj, column.key, strip_controls(value))
            value = obj.__dict__.get(column.key)
        if not column.type.length:
            continue
        if isinstance(value, str) and len(value) > column.type.length:
            label = _(LABELS[column.key]) if column.key in LABELS else f"{table.name}.{column.key}"
            raise too_long(label, column.type.length)


def _before_flush(session: Session, flush_context, instances) -> None:
    for obj in list(session.new) + list(session.dirty):
        check_object(obj)


def install_length_guard() -> None:
    """Listen on every ORM session (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
