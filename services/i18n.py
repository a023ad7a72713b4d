"""Translation helpers usable outside a request (CLI, bot, scheduler).

Flask-Babel needs an app context to pick a catalogue; without one the Chinese source string is
used as is, which is the interface language anyway.
"""
from __future__ import annotations

from flask import has_app_context
from flask_babel import gettext as _babel_gettext


def _(message: str, **params) -> str:
    if has_app_context():
        return _babel_gettext(message, **params)
    return message % params if params else message
