"""Control characters in typed or imported text.

A C0 control character (or NUL) in one cell used to stay in the database and then take down every
spreadsheet export (openpyxl refuses to write it) until someone found the cell; on PostgreSQL a NUL
made the import itself fail. Text is cleaned where it enters (sheets, every ORM write) and again
where it leaves (the export writer), with this one rule: tab, line feed and carriage return are
kept (a multi-line note), every other C0 control character and DEL is dropped.
"""
from __future__ import annotations

import re
from typing import Any

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_controls(value: Any) -> Any:
    """The text without control characters (other than tab and line breaks); non-text unchanged."""
    if isinstance(value, str) and _CONTROLS.search(value):
        return _CONTROLS.sub("", value)
    return value
