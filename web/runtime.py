"""Per-app objects the adapters hand to services: the clock and the scan rules."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from services.checkin import ScanRules
from services.clock import system_clock


def now() -> datetime:
    """The app's clock: the system clock, or a test's movable one (`app.config["CLOCK"]`)."""
    return (current_app.config.get("CLOCK") or system_clock)()


def clock():
    return current_app.config.get("CLOCK") or system_clock


def scan_rules() -> ScanRules:
    rules = current_app.extensions.get("pingan_scan_rules")
    if rules is None:
        rules = ScanRules.from_config(current_app.config)
        current_app.extensions["pingan_scan_rules"] = rules
    return rules
