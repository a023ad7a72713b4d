"""Headless Chromium (Debian's package) driven by Playwright, for end-to-end tests."""
from __future__ import annotations

import shutil

import pytest

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def wait_for_location(page, timeout: float = 15_000) -> None:
    """Wait until the scan page has put the phone's location into its form. Through Playwright's
    own `expect`, which runs in its isolated world: `wait_for_function` with a string evaluates it
    in the page, and the page's CSP (no 'unsafe-eval') refused that now and then."""
    from playwright.sync_api import expect

    expect(page.locator("input[name=lat]").first).not_to_have_value("", timeout=timeout)
