"""Query and form values that must be numbers: checked here, so odd input is a clear 400, not a 500.

`str.isdigit()` accepts "²" and other Unicode digits that `int()` refuses, and a 20-digit id
overflows PostgreSQL's integer; a year outside 2000–2100 is no programme year (and 10000 breaks
`date`).
"""
from __future__ import annotations

from typing import Iterable

from flask import request
from werkzeug.routing import IntegerConverter

from services.errors import DomainError
from services.i18n import _

YEAR_MIN, YEAR_MAX = 2000, 2100


def is_id(value: str | None) -> bool:
    """A database id as typed: 1–9 ASCII digits."""
    return bool(value) and value.isascii() and value.isdigit() and len(value) <= 9


def db_int(value: str) -> int:
    """For `request.args.get(name, type=db_int)`: an id or a page number the database can hold.
    Anything else raises ValueError, which Werkzeug turns into the default (`int` let
    99999999999999999999 through to the query: a 500 on SQLite and on PostgreSQL)."""
    value = value.strip()
    if not is_id(value):
        raise ValueError(value)
    return int(value)


ID_MAX = 2**31 - 1   # PostgreSQL's integer; SQLite's ids stay far below it


def ids(values: Iterable[str]) -> list[int]:
    return [int(v) for v in values if is_id(v)]


def id_value(value: str | None, label: str) -> int:
    if not is_id((value or "").strip()):
        raise DomainError("bad_id", _("%(label)s无效", label=label))
    return int(value.strip())


def check_year(year: int | None) -> int | None:
    if year is not None and not YEAR_MIN <= year <= YEAR_MAX:
        raise DomainError("bad_year", _("年份应在 %(a)d 到 %(b)d 之间", a=YEAR_MIN, b=YEAR_MAX))
    return year


def year_arg(name: str = "year") -> int | None:
    """The `year` of the query or form: None when absent; a clear 400 when it is not a year."""
    raw = (request.values.get(name) or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.lstrip("-").isdigit() and len(raw) <= 6):
        raise DomainError("bad_year", _("年份应在 %(a)d 到 %(b)d 之间", a=YEAR_MIN, b=YEAR_MAX))
    return check_year(int(raw))


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: at most PostgreSQL's integer, so a 20-digit id in a URL is the
    same 404 as a missing one instead of an overflow in the query (a 500 on both databases)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = ID_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)
