"""Translation helpers usable outside a request (CLI, bot, scheduler).

Flask-Babel needs an app context to pick a catalogue; without one the Chinese source string is
used as is, which is the interface language anyway.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import has_app_context
from flask_babel import gettext as _babel_gettext


def _(message: str, **params) -> str:
    if has_app_context():
        return _babel_gettext(message, **params)
    return message % params if params else message


PROGRAMME_LOCALE = "zh"


@contextmanager
def in_programme_language() -> Iterator[None]:
    """Messages to people and labels stored for everyone are written in Chinese, the programme's
    language, whichever language the coordinator (or volunteer) whose request caused them reads the
    pages in: a volunteer must not get an English nudge because the coordinator on duty chose English."""
    from flask_babel import force_locale

    with force_locale(PROGRAMME_LOCALE):
        yield
