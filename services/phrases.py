"""Strings of a shared report that can be said again in another language.

The year's indicators are computed once, in Chinese, and shared by every page and process (the
scheduler stores them; web workers keep them): a coordinator who chose English must still not read
"志愿者工作时长 · 人均 4.7 小时". A `Phrase` is the Chinese text itself (a `str`, so exports, the
digest and the API keep using it unchanged) that also remembers its message id and parameters;
`localized` says it again in the language of the page that shows it.
"""
from __future__ import annotations

from typing import Any

from services.i18n import _ as _gettext


class Phrase(str):
    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: dict[str, Any] | None = None, text: str | None = None) -> "Phrase":
        params = dict(params or {})
        if text is None:
            text = _gettext(msgid, **params)
        self = super().__new__(cls, text)
        self.msgid, self.params = msgid, params
        return self

    def localized(self) -> str:
        """This phrase in the current language (the request's, or `force_locale`'s)."""
        params = {k: localized(v) for k, v in self.params.items()}
        return _gettext(self.msgid, **params)

    def __reduce__(self):
        return Phrase, (self.msgid, self.params, str(self))


def phrase(msgid: str, **params: Any) -> Phrase:
    """Like `_`, but the result can be said again in another language (`localized`). The name `_`
    in a module that imports it as such keeps Babel's extraction finding the message."""
    return Phrase(msgid, params)


def localized(value: Any) -> Any:
    """A phrase in the current language; anything else as it is (names, numbers, user text)."""
    return value.localized() if isinstance(value, Phrase) else value
