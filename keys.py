"""The current app's keys as objects, for the web and CLI adapters.

Kept out of `extensions.py` (which holds only the Flask extensions and imports nothing from
`services/`): these factories read the keys from the app's config and hand them to the domain's
classes.
"""
from __future__ import annotations

from flask import current_app

from services.pii import PersonalDataCipher
from services.tokens import CodeSigner


def data_cipher() -> PersonalDataCipher:
    """The personal-data cipher for the current app (keys come from config, never from code)."""
    return PersonalDataCipher(current_app.config["DATA_KEY"])


def code_signer() -> CodeSigner:
    """Signs poster and card codes with a key derived from SECRET_KEY."""
    return CodeSigner(current_app.config["SECRET_KEY"])
