"""Rate limits on scans (issue 10, item 15).

A signed-in phone is limited per device, never per address: 500 volunteers at one street corner
may reach the server through one carrier address, and none of them may be refused because of the
others. A phone that is not signed in is refused by the service before any write and limited per
address, so hammering a public poster URL costs the server almost nothing.
"""
from __future__ import annotations

from flask import current_app
from flask_limiter.util import get_remote_address

from extensions import limiter
from web.auth import current_volunteer


def scan_device_id() -> int | None:
    """The signed-in device of this request: the same once-per-request lookup the scan uses."""
    vol = current_volunteer()
    return vol.device_id if vol else None


def _device_key() -> str:
    return f"device:{scan_device_id()}"


# Shared by the scan page's POST and POST /api/v1/scans (one budget per device or address).
scan_per_device = limiter.shared_limit(lambda: current_app.config["SCAN_RATE_LIMIT_PER_DEVICE"], scope="scan-device",
                                       key_func=_device_key, exempt_when=lambda: scan_device_id() is None)
scan_anonymous_per_address = limiter.shared_limit(lambda: current_app.config["SCAN_RATE_LIMIT_ANONYMOUS"],
                                                  scope="scan-anonymous", key_func=get_remote_address,
                                                  exempt_when=lambda: scan_device_id() is not None)
