"""Walk every route: coordinator pages refuse anonymous users and volunteers, admin pages refuse
coordinators, and every form refuses a missing CSRF token."""
from __future__ import annotations

import pytest

from tests.conftest import csrf_from

PUBLIC_COORD_ENDPOINTS = {"coord_auth.login", "coord_auth.logout"}


def _routes(app, *, prefix: str = "coord_"):
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(prefix) or rule.endpoint in PUBLIC_COORD_ENDPOINTS:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
        for method in sorted(rule.methods & {"GET", "POST"}):
            out.append((rule.endpoint, method, url))
    return out


def test_the_walk_covers_every_area(app):
    endpoints = {e.split(".")[0] for e, _, _ in _routes(app)}
    assert {"coord_auth", "coord_volunteers", "coord_points", "coord_events", "coord_admin"} <= endpoints
    assert len(_routes(app)) > 35


def _call(client, method, url, token):
    if method == "GET":
        return client.get(url)
    return client.post(url, data={"csrf_token": token})


def test_anonymous_users_are_sent_to_sign_in(app, client):
    token = csrf_from(client)
    for endpoint, method, url in _routes(app):
        resp = _call(client, method, url, token)
        assert resp.status_code == 302, (endpoint, method, resp.status_code)
        assert "/coord/login" in resp.headers["Location"], endpoint


def test_signed_in_volunteers_are_refused(app, client, auth):
    auth.volunteer()
    assert client.get("/api/v1/me").status_code == 200  # the phone really is signed in
    token = csrf_from(client)
    for endpoint, method, url in _routes(app):
        resp = _call(client, method, url, token)
        assert resp.status_code == 302 and "/coord/login" in resp.headers["Location"], (endpoint, method)


def test_coordinators_are_refused_admin_pages(app, client, auth):
    auth.login()
    token = csrf_from(client, "/coord/")
    admin_routes = [r for r in _routes(app) if r[0].startswith("coord_admin.")]
    assert admin_routes
    for endpoint, method, url in admin_routes:
        assert _call(client, method, url, token).status_code == 403, (endpoint, method)
    assert client.get("/coord/volunteers/export.xlsx?with_id_numbers=1").status_code == 403


def test_admins_reach_admin_pages(client, auth):
    auth.login("boss", role="admin")
    assert client.get("/coord/admin/").status_code == 200


@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_every_form_rejects_a_missing_csrf_token(app, client, auth, who):
    if who == "admin":
        auth.login("boss", role="admin")
    posts = [r for r in _routes(app, prefix="") if r[1] == "POST" and not r[2].startswith("/api/")]
    assert len(posts) > 20
    for endpoint, _method, url in posts:
        resp = client.post(url, data={})
        assert resp.status_code == 400, (endpoint, resp.status_code)
