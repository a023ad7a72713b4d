"""Encryption of personal data at rest, below the models and the services.

The personal-data cipher is infrastructure, like the database: it needs the data key and nothing
of the domain. It lives here so that `extensions.py`, the models and `services/` can all use it
without the application's plumbing importing the business rules (issue 10, item 19).
`services.pii.PersonalDataCipher` adds the domain's refusal (a translated `DomainError`).
"""
from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


class DataKeyMismatch(ValueError):
    """The stored value was encrypted with another data key (instance/data_key lost or replaced)."""

    code = "data_key_mismatch"


class DataCipher:
    """Encrypts ID numbers with the data key and derives a keyed hash for exact look-ups.

    The hash lets an insurer's list be matched by ID number without decrypting every row, and a
    copy of the database alone reveals neither the number nor (without the key) a rainbow table.
    """

    def __init__(self, data_key: str) -> None:
        self._fernet = Fernet(data_key.encode("ascii") if isinstance(data_key, str) else data_key)
        raw = data_key.encode() if isinstance(data_key, str) else bytes(data_key)
        self._hash_key = hashlib.sha256(b"pingan-vest:id-number-index:" + raw).digest()

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise self._mismatch() from None

    def blind_index(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def _mismatch(self) -> Exception:
        return DataKeyMismatch("data key differs from the one the value was encrypted with")
