"""Signed codes printed on paper (patrol-point posters, volunteer cards) and random secrets.

A printed code must be short (a dense QR is hard to scan from a metre away in the dark), must not
be guessable, and must be revocable without a database of issued codes. So a code is
`<id>.<version>.<mac>`: the MAC (HMAC-SHA256, truncated to 128 bits) binds the id to a version kept
on the row, and bumping the version revokes every code printed before. The server key is derived
per purpose from `SECRET_KEY`, so a poster MAC can never pass as a card MAC.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from services.errors import DomainError
from services.i18n import _

POSTER = "poster"
CARD = "card"

# What every token looks like, checked before anything else is done with it: a code from a URL may
# hold any character (`hmac.compare_digest` raises on non-ASCII text, `str.isdigit` accepts "²" and
# "١" that `int` then refuses), so anything outside the alphabet is refused as a bad token first.
_SIGNED_CODE_RE = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}\.[A-Za-z0-9_-]{22}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")


@dataclass(frozen=True)
class SignedCode:
    object_id: int
    version: int


class CodeSigner:
    def __init__(self, secret_key: str) -> None:
        self._root = secret_key.encode("utf-8")

    def _mac(self, purpose: str, object_id: int, version: int) -> str:
        key = hmac.new(self._root, f"pingan-vest:{purpose}".encode(), hashlib.sha256).digest()
        digest = hmac.new(key, f"{object_id}.{version}".encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def sign(self, purpose: str, object_id: int, version: int) -> str:
        return f"{object_id}.{version}.{self._mac(purpose, object_id, version)}"

    def verify(self, purpose: str, code: str) -> SignedCode:
        """Check a code's MAC; raise `bad_token` for anything unsigned, guessed or altered."""
        code = (code or "").strip() if isinstance(code, str) else ""
        if not _SIGNED_CODE_RE.fullmatch(code):
            raise DomainError("bad_token", _("二维码无效：不是平安马甲签发的二维码"))
        parts = code.split(".")
        object_id, version = int(parts[0]), int(parts[1])
        if not hmac.compare_digest(self._mac(purpose, object_id, version), parts[2]):
            raise DomainError("bad_token", _("二维码无效：不是平安马甲签发的二维码"))
        return SignedCode(object_id, version)


def new_secret() -> str:
    """A random URL-safe secret (192 bits) for one-time links and device cookies."""
    return secrets.token_urlsafe(24)


def is_secret_shaped(secret: object) -> bool:
    """Whether a string could be one of our secrets (URL-safe base64, sane length); callers refuse
    anything else before looking it up."""
    return isinstance(secret, str) and _SECRET_RE.fullmatch(secret) is not None


def hash_secret(secret: str) -> str:
    """Only hashes of secrets are stored: a copy of the database signs nobody in."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
