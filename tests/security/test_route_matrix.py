"""Every route × every role (issue 10, acceptance): a route nobody decided about fails the suite.

Each route of `app.url_map` has one line in ROUTE_ROLES saying what anonymous visitors, a
volunteer's signed-in phone, a team leader, a coordinator and an admin get. The walk calls every
route as each of them (with a valid CSRF token, and ids that do not exist, so nothing real
changes) and checks the answer. A new route without a line fails with a message saying where to
add one.
"""
from __future__ import annotations

from datetime import date

import pytest

from extensions import db
from models import Volunteer
from services.signin import confirm_login_link, issue_login_link
from services.users import create_user
from tests.conftest import CSRF_RE

ROLES = ("anonymous", "volunteer", "leader", "coordinator", "admin")

# What a role gets:
OK = "ok"                # passes the access check (2xx/3xx elsewhere, or a 4xx about the dummy data)
LOGIN = "login"          # redirected to the coordinator sign-in (`?next=` back here)
BOARD = "board"          # a team leader sent to the on-patrol board (on a GET)
FORBIDDEN = "forbidden"  # 403
UNAUTH = "unauth"        # 401 (the API, a scan, a wrong password)
ME = "me"                # redirected to /me: the volunteer sign-in, or back "home" after a phone's POST
OK_OR_ME = (OK, ME)      # a volunteer's own POSTs end on /me too, so there the two look alike

#            anonymous  volunteer  leader     coordinator  admin
PUBLIC =     (OK,       OK,        OK,        OK,          OK)
PHONE =      (ME,       OK,        ME,        ME,          ME)
PHONE_POST = (ME,       OK_OR_ME,  ME,        ME,          ME)
PHONE_API =  (UNAUTH,   OK,        UNAUTH,    UNAUTH,      UNAUTH)
STAFF =      (LOGIN,    LOGIN,     FORBIDDEN, OK,          OK)
STAFF_HOME = (LOGIN,    LOGIN,     BOARD,     OK,          OK)
BOARD_ROLE = (LOGIN,    LOGIN,     OK,        OK,          OK)
ADMIN =      (LOGIN,    LOGIN,     FORBIDDEN, FORBIDDEN,   OK)
STAFF_API =  (UNAUTH,   UNAUTH,    FORBIDDEN, OK,          OK)
LOGIN_FORM = (UNAUTH,   UNAUTH,    UNAUTH,    UNAUTH,      UNAUTH)  # anyone may try; no password → 401

ROUTE_ROLES: dict[str, tuple] = {
    # Public pages, the public API and the static files.
    "GET main.index": PUBLIC,
    "GET main.set_language": PUBLIC,
    "GET health.healthz": PUBLIC,
    # A 404 for every role: only the METRICS_TOKEN bearer gets the metrics (tests/web/test_metrics_and_logs.py).
    "GET metrics.metrics": PUBLIC,
    "GET static": PUBLIC,
    "GET api-docs.openapi_json": PUBLIC,
    "GET api_v1.Points": PUBLIC,
    "GET api_v1.PointDetail": PUBLIC,
    "GET api_v1.Events": PUBLIC,
    "GET api_v1.EventDetail": PUBLIC,
    # A phone's own data.
    "GET api_v1.Me": PHONE_API,
    "POST api_v1.Scans": PHONE_API,
    "GET api_v1.Indicators": STAFF_API,
    # Poster, sign-in links and cards: anyone may open them; the token decides.
    "GET scan.point": PUBLIC,
    "GET scan.service_worker": PUBLIC,   # the offline queue's service worker (issue 11)
    "GET scan.offline_shell": PUBLIC,    # the cached page a poster opens with no signal
    "POST scan.point_scan": PHONE_API,
    "GET signin.link": PUBLIC,
    "POST signin.link_confirm": PUBLIC,
    "GET signin.card": PUBLIC,
    "POST signin.card_confirm": PUBLIC,
    "GET signin.self_service": PUBLIC,
    "POST signin.self_service": PUBLIC,
    # SMS sign-in: a code to any number, then the code (the same answer for every number).
    "GET signin.sms_start": PUBLIC,
    "POST signin.sms_start": PUBLIC,
    "GET signin.sms_code": PUBLIC,
    "POST signin.sms_code": PUBLIC,
    "GET signin.me": PUBLIC,
    "POST signin.signout": (ME,) * 5,  # always back to /me; ends only the caller's own device
    "GET signin.my_inbox": PHONE,
    "POST signin.my_inbox_read": PHONE_POST,
    "GET signin.my_survey": PHONE,
    "POST signin.my_survey": PHONE_POST,
    "POST signin.my_telegram": PHONE_POST,
    "POST signin.my_telegram_unlink": PHONE_POST,
    "POST signin.my_shift_action": PHONE_POST,
    "POST channels.my_channels": PHONE_POST,
    "GET channels.inbox_item": PUBLIC,      # the short link in an SMS: a redirect to /me/inbox#m<id>
    "GET channels.survey_link": PUBLIC,     # the survey link in an SMS: the token decides
    "POST channels.survey_link": PUBLIC,
    # Coordinator sign-in.
    "GET coord_auth.login": PUBLIC,
    "POST coord_auth.login": LOGIN_FORM,
    "POST coord_auth.logout": PUBLIC,
    "GET coord_auth.dashboard": STAFF_HOME,
    # The on-patrol board: team leaders too.
    "GET coord_board.index": BOARD_ROLE,
    "GET coord_board.rows": BOARD_ROLE,
    "POST coord_board.check_in": BOARD_ROLE,
    "POST coord_board.check_out": BOARD_ROLE,
    "POST coord_board.remind": BOARD_ROLE,
    # The coordinators' own inbox (leave requests): team leaders too.
    "GET coord_inbox.index": BOARD_ROLE,
    "POST coord_inbox.read": BOARD_ROLE,
    # Admins only.
    "GET coord_admin.index": ADMIN,
    "POST coord_admin.create": ADMIN,
    "POST coord_admin.update": ADMIN,
    "POST coord_admin.settings": ADMIN,
    "POST coord_programme.settings": ADMIN,  # its GET is for all staff
    # Staff (coordinators and admins).
    "GET coord_attendance.index": STAFF,
    "POST coord_attendance.review": STAFF,
    "GET coord_attendance.queue": STAFF,
    "POST coord_attendance.review_bulk": STAFF,
    "POST coord_attendance.adjust": STAFF,
    "GET coord_attendance.import_file": STAFF,
    "POST coord_attendance.import_file": STAFF,
    "GET coord_events.index": STAFF,
    "POST coord_events.create": STAFF,
    "GET coord_events.detail": STAFF,
    "POST coord_events.update": STAFF,
    "POST coord_events.add_shift": STAFF,
    "GET coord_events.shift": STAFF,
    "POST coord_events.update_shift": STAFF,
    "POST coord_events.assign": STAFF,
    "POST coord_events.remove_shift": STAFF,
    "POST coord_events.unassign": STAFF,
    "GET coord_events.sheet_pdf_view": STAFF,
    "GET coord_events.sheet_xlsx_view": STAFF,
    "GET coord_events.import_file": STAFF,
    "POST coord_events.import_file": STAFF,
    "GET coord_notices.index": STAFF,
    "GET coord_notices.detail": STAFF,
    "GET coord_notices.new": STAFF,
    "POST coord_notices.preview": STAFF,
    "POST coord_notices.send": STAFF,
    "POST coord_notices.resend": STAFF,
    "GET coord_notices.surveys": STAFF,
    "POST coord_notices.survey_create": STAFF,
    "POST coord_notices.survey_send": STAFF,
    "POST coord_notices.link_volunteer": STAFF,
    "POST coord_notices.unlink_volunteer": STAFF,
    "GET coord_notices.link_me": STAFF,
    "POST coord_notices.link_me": STAFF,
    "GET coord_points.index": STAFF,
    "GET coord_points.new": STAFF,
    "POST coord_points.new": STAFF,
    "GET coord_points.edit": STAFF,
    "POST coord_points.edit": STAFF,
    "POST coord_points.rotate": STAFF,
    "GET coord_points.poster": STAFF,
    "GET coord_points.qr": STAFF,
    "GET coord_points.posters": STAFF,
    "GET coord_points.import_file": STAFF,
    "POST coord_points.import_file": STAFF,
    "GET coord_programme.dashboard": STAFF,
    "GET coord_programme.indicator": STAFF,
    "GET coord_programme.indicator_export": STAFF,
    "POST coord_programme.indicator_remind": STAFF,
    "GET coord_programme.export": STAFF,
    "GET coord_programme.settings": STAFF,
    "GET coord_programme.budget_page": STAFF,
    "POST coord_programme.budget_page": STAFF,
    "GET coord_programme.complaints": STAFF,
    "POST coord_programme.complaints": STAFF,
    "GET coord_programme.digest": STAFF,
    "POST coord_programme.digest": STAFF,
    "GET coord_programme.documents": STAFF,
    "POST coord_programme.documents": STAFF,
    "GET coord_programme.document_file": STAFF,
    "GET coord_programme.equipment": STAFF,
    "POST coord_programme.equipment": STAFF,
    "GET coord_programme.insurance": STAFF,
    "POST coord_programme.insurance": STAFF,
    "POST coord_programme.insurance_import": STAFF,
    "GET coord_volunteers.index": STAFF,
    "GET coord_volunteers.detail": STAFF,
    "GET coord_volunteers.export": STAFF,  # with ID numbers: admins only (tests/web/test_roles.py)
    "GET coord_volunteers.cards": STAFF,
    "GET coord_volunteers.card_one": STAFF,
    "POST coord_volunteers.card_revoke": STAFF,
    "POST coord_volunteers.revoke": STAFF,
    "POST coord_volunteers.login_link": STAFF,
    "POST coord_volunteers.withdraw": STAFF,
    "POST coord_volunteers.reinstate": STAFF,
    "GET coord_volunteers.import_roster": STAFF,
    "POST coord_volunteers.import_roster": STAFF,
    "GET coord_volunteers.export_csv": STAFF,
    "GET coord_programme.export_csv": STAFF,
    "POST coord_volunteers.pin_issue": STAFF,
    "POST coord_volunteers.pin_unlock": STAFF,
    "POST coord_volunteers.card_one_with_pin": STAFF,
    "POST coord_volunteers.cards_with_pins": STAFF,
    # Background exports: staff; a job of another user is a 404 (tests/web/test_export_jobs.py).
    "GET coord_exports.index": STAFF,
    "GET coord_exports.detail": STAFF,
    "GET coord_exports.status": STAFF,
    "GET coord_exports.download": STAFF,
    # Personal data and accounts: admins only.
    "GET coord_audit.index": ADMIN,
    "POST coord_admin.end_sessions": ADMIN,
    "POST coord_programme.settings_year_start": ADMIN,
    "POST coord_volunteers.subject_export": ADMIN,
    "POST coord_volunteers.id_number_confirm": ADMIN,
    "POST coord_volunteers.erase": ADMIN,
    "GET coord_messaging.settings_page": ADMIN,
    "POST coord_messaging.settings_page": ADMIN,
    "POST coord_channels.login_sms": STAFF,
}

# Routes that end the caller's session run on a throwaway client of the same role.
ENDS_SESSION = {"POST coord_auth.logout", "POST signin.signout"}
CSRF_FAILED = "页面已过期或不完整"
NO_SUCH_ID = "999999"


def _routes(app) -> list[tuple[str, str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for arg in rule.arguments:
            for conv in ("int", "path", "string"):
                url = url.replace(f"<{conv}:{arg}>", NO_SUCH_ID if conv == "int" else "x")
            url = url.replace(f"<{arg}>", "x")
        for method in sorted(rule.methods & {"GET", "POST", "PUT", "PATCH", "DELETE"}):
            out.append((f"{method} {rule.endpoint}", method, url))
    return sorted(out)


def test_every_route_has_a_decision_for_every_role(app):
    missing = [f"{key}  ({url})" for key, _m, url in _routes(app) if key not in ROUTE_ROLES]
    assert not missing, ("routes without an entry in ROUTE_ROLES (tests/security/test_route_matrix.py); "
                         "add one line each, e.g. \"GET blueprint.view\": STAFF:\n  " + "\n  ".join(missing))
    known = {key for key, _m, _u in _routes(app)}
    stale = sorted(set(ROUTE_ROLES) - known)
    assert not stale, f"ROUTE_ROLES names routes that no longer exist: {stale}"
    assert all(len(v) == len(ROLES) for v in ROUTE_ROLES.values())


class _Roles:
    """One client per role, each from its own address (so no role uses up another's limits)."""

    def __init__(self, app):
        self.app = app
        self.n = 0

    def client(self, role: str):
        self.n += 1
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{self.n}"
        if role == "volunteer":
            with self.app.app_context():
                vol = Volunteer(name=f"志愿者{self.n}", phone=f"1390000{self.n:04d}", vest_no=f"PJ-{self.n:04d}",
                                joined_on=date(2026, 1, 1))
                db.session.add(vol)
                db.session.commit()
                url = issue_login_link(db.session, vol.id, base_url="http://x", created_by="t").url
                secret = confirm_login_link(db.session, url.rsplit("/", 1)[1]).device_secret
            client.set_cookie("pv_device", secret)
        elif role in ("leader", "coordinator", "admin"):
            name = f"{role}{self.n}"
            with self.app.app_context():
                create_user(db.session, name, "password-123", role)
            page = client.get("/coord/login").get_data(as_text=True)
            resp = client.post("/coord/login", data={"username": name, "password": "password-123",
                                                     "csrf_token": CSRF_RE.search(page).group(1)})
            assert resp.status_code == 302
        return client


def _token(client) -> str:
    return CSRF_RE.search(client.get("/coord/login").get_data(as_text=True)).group(1)


def _outcome(resp, method: str) -> str:
    status, location = resp.status_code, resp.headers.get("Location", "")
    if status in (301, 302, 303, 307, 308):
        path, _sep, query = location.partition("?")
        path = "/" + path.split("://", 1)[-1].split("/", 1)[-1] if "://" in path else path
        if path == "/coord/login" and "next=" in query:
            return LOGIN
        if path == "/coord/board/" and method == "GET":
            return BOARD
        if path == "/me":
            return ME
        return OK
    if status == 401:
        return UNAUTH
    if status == 403:
        return FORBIDDEN
    if status == 400 and CSRF_FAILED in resp.get_data(as_text=True):
        return "csrf-refused"
    if status < 500:
        return OK  # 2xx, or a 4xx about the dummy id / the empty form: the access check let it in
    return f"error {status}"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_table_says(app, role):
    column = ROLES.index(role)
    roles = _Roles(app)
    client = roles.client(role)
    token = _token(client)
    wrong = []
    for key, method, url in _routes(app):
        expected = ROUTE_ROLES.get(key)
        if expected is None:
            continue  # reported by test_every_route_has_a_decision_for_every_role
        who = client
        if key in ENDS_SESSION:
            who = roles.client(role)
            token_used = _token(who)
        else:
            token_used = token
        if method == "GET":
            resp = who.get(url)
        elif url.startswith("/api/"):
            resp = who.open(url, method=method, json={"token": "x"})
        else:
            resp = who.open(url, method=method, data={"csrf_token": token_used})
        got = _outcome(resp, method)
        resp.close()
        want = expected[column]
        if got != want and not (isinstance(want, tuple) and got in want):
            wrong.append(f"{key} {url}: expected {expected[column]}, got {got} ({resp.status_code} "
                         f"{resp.headers.get('Location', '')})")
    assert not wrong, f"as {role}:\n  " + "\n  ".join(wrong)
