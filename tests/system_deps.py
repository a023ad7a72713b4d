"""Debian packages some tests need, as skip markers with the install line as the reason.

`make test` installs them itself when it runs as root (scripts/debian-packages.sh); otherwise the
tests that need one are skipped with this reason (shown by `-ra`) instead of failing at collection.
"""
from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

import pytest


def _reason(package: str, what: str) -> str:
    return f"{what} needs the Debian package {package}: apt-get install {package} (or run make test as root)"


@lru_cache(maxsize=1)
def _zbar_decoder():
    """pyzbar loads libzbar with ctypes when imported: without libzbar0 the import itself fails."""
    try:
        from pyzbar.pyzbar import decode
    except (ImportError, OSError):
        return None
    return decode


def zbar_available() -> bool:
    return _zbar_decoder() is not None


def decode_qr(image) -> list:
    """zbar's decoder (the test is skipped by `needs_zbar` when it is missing)."""
    decoder = _zbar_decoder()
    if decoder is None:
        pytest.skip(_reason("libzbar0", "decoding QR codes"))
    return decoder(image)


def cjk_font_available() -> bool:
    return Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc").exists()


needs_zbar = pytest.mark.skipif(not zbar_available(), reason=_reason("libzbar0", "decoding QR codes"))
needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"),
                                   reason=_reason("poppler-utils", "reading PDFs back"))
needs_cjk_font = pytest.mark.skipif(not cjk_font_available(),
                                    reason=_reason("fonts-wqy-zenhei", "an embedded CJK font"))
needs_chromium = pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                                    reason=_reason("chromium", "the browser test"))
