"""Rate limits on scans (issue 10, item 15).

A signed-in phone is limited per volunteer, never per address: 500 volunteers at one street corner
may reach the server through one carrier address, and none of them may be refused because of the
others. Not per phone either: a volunteer card signs in any number of phones, and each phone with a
budget of its own multiplied what one photographed card could write. A phone that is not signed in
is refused by the service before any write and limited per address, so hammering a public poster
URL costs the server almost nothing.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from flask_limiter.util import get_remote_address

from extensions import limiter
from web.auth import DEVICE_COOKIE, VOLUNTEER_BLUEPRINTS, current_volunteer


def scan_volunteer_id() -> int | None:
    """The volunteer signed in on this phone: the same once-per-request lookup the scan uses."""
    vol = current_volunteer()
    return vol.id if vol else None


def _signed_in() -> bool:
    return scan_volunteer_id() is not None


def _limit() -> str:
    return current_app.config["SCAN_RATE_LIMIT_PER_VOLUNTEER" if _signed_in() else "SCAN_RATE_LIMIT_ANONYMOUS"]


def _key() -> str:
    return f"volunteer:{scan_volunteer_id()}" if _signed_in() else get_remote_address()


def _scope(_endpoint: str) -> str:
    return "scan-volunteer" if _signed_in() else "scan-anonymous"


# Shared by the scan page's POST and POST /api/v1/scans (one budget per volunteer or address). One
# limit whose value, key and scope follow the sign-in, rather than two limits each exempting the
# other's requests: Flask-Limiter's per-limit work is a tenth of a scan's cost under load.
scan_limit = limiter.shared_limit(_limit, scope=_scope, key_func=_key)


def identify_phones_first(app: Flask) -> None:
    """Look the phone up before Flask-Limiter's hook does. The limiter treats any exception from a
    key function as its storage failing: it switches every later request of the process to
    in-memory limits and asks the key again on a session whose connection just died, which raised
    something other than a database error (a 500 instead of the 503 the phone can act on). Asked
    here first, a database that is down answers through the app's 503 handler and the limiter never
    runs; asked successfully, the answer is kept on the request and the limiter reuses it.

    Only on the volunteers' blueprints, whose limits are keyed by the phone: an office page, the
    language switch or /healthz never looked the phone up and must not start to (its "last seen"
    write would count as an office change to the indicators).

    Called before any other hook is inserted at the front (the metrics' request id stays first)."""
    def _identify_phone() -> None:
        if request.blueprint in VOLUNTEER_BLUEPRINTS and DEVICE_COOKIE in request.cookies:
            current_volunteer()

    app.before_request_funcs.setdefault(None, []).insert(0, _identify_phone)
