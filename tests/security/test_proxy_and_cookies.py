"""Behind the real proxy (issue 10, items 10 and 11): Secure cookies, the real client address, shared limits."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from app import _trust_proxies, create_app
from tests.conftest import csrf_from

ROOT = Path(__file__).resolve().parents[2]


def _cookie(resp, name: str) -> str:
    found = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert found, f"no {name} cookie in {resp.headers.getlist('Set-Cookie')}"
    return found[0]


def _app(tmp_path, base_url: str, **extra):
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "PUBLIC_BASE_URL": base_url,
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'c.db'}", "DEMO": False, **extra})


def test_https_public_address_makes_every_cookie_secure(tmp_path, monkeypatch):
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    app = _app(tmp_path, "https://pingan.example.cn")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    client = app.test_client()
    page = client.get("/coord/login", base_url="https://pingan.example.cn")
    session_cookie = _cookie(page, "session")
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    lang = _cookie(client.get("/lang/en", base_url="https://pingan.example.cn"), "lang")
    assert "Secure" in lang and "HttpOnly" in lang and "SameSite=Lax" in lang
    browser = _cookie(client.get("/p/not-a-poster", base_url="https://pingan.example.cn"), "pv_browser")
    assert "Secure" in browser and "HttpOnly" in browser and "SameSite=Lax" in browser


def test_plain_http_keeps_cookies_usable_and_an_explicit_setting_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    app = _app(tmp_path, "http://127.0.0.1:5000")
    assert app.config["SESSION_COOKIE_SECURE"] is False
    cookie = _cookie(app.test_client().get("/coord/login"), "session")
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    assert _app(tmp_path, "http://127.0.0.1:5000").config["SESSION_COOKIE_SECURE"] is True


# --- the real client address -------------------------------------------------------------------

def _requests_until_refused(client, path: str, remote: str, xff=None, limit: int = 60) -> int:
    """POSTs a bad sign-in link from `remote` (optionally with X-Forwarded-For) until a 429."""
    token = csrf_from(client, "/coord/login")
    for n in range(1, limit + 1):
        headers = {}
        if xff is not None:
            headers["X-Forwarded-For"] = xff(n) if callable(xff) else xff
        resp = client.post(path, data={"csrf_token": token}, headers=headers,
                           environ_base={"REMOTE_ADDR": remote})
        if resp.status_code == 429:
            return n
    return limit + 1


PATH = "/login/NoSuchLinkToken"


def test_without_trusted_proxies_a_spoofed_forwarded_header_is_ignored(app):
    assert app.config["TRUSTED_PROXY_HOPS"] == 0
    honest = _requests_until_refused(app.test_client(), PATH, "198.51.100.1")
    assert honest <= 30
    # Rotating the header does not buy new attempts: the key is the socket address.
    spoofing = _requests_until_refused(app.test_client(), PATH, "198.51.100.2",
                                       xff=lambda n: f"203.0.113.{n}")
    assert spoofing == honest
    # Naming a victim's address does not use up the victim's attempts.
    _requests_until_refused(app.test_client(), PATH, "198.51.100.3", xff="198.51.100.4")
    victim = app.test_client()
    resp = victim.post(PATH, data={"csrf_token": csrf_from(victim, "/coord/login")},
                       environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert resp.status_code != 429


def test_behind_one_proxy_the_client_is_the_address_the_proxy_appended(app, monkeypatch):
    monkeypatch.setitem(app.config, "TRUSTED_PROXY_HOPS", 1)
    monkeypatch.setattr(app, "wsgi_app", app.wsgi_app)
    _trust_proxies(app)
    proxy = "127.0.0.1"
    honest = _requests_until_refused(app.test_client(), PATH, proxy, xff="192.0.2.10")
    assert honest <= 30
    # nginx appends the real address ($proxy_add_x_forwarded_for); what the client wrote before
    # it is not believed, however often it changes.
    spoofing = _requests_until_refused(app.test_client(), PATH, proxy,
                                       xff=lambda n: f"203.0.113.{n}, 192.0.2.11")
    assert spoofing == honest
    # A client claiming to be the victim does not exhaust the victim's limit...
    _requests_until_refused(app.test_client(), PATH, proxy, xff="192.0.2.20, 192.0.2.12")
    victim = app.test_client()
    token = csrf_from(victim, "/coord/login")
    resp = victim.post(PATH, data={"csrf_token": token}, headers={"X-Forwarded-For": "192.0.2.20"},
                       environ_base={"REMOTE_ADDR": proxy})
    assert resp.status_code != 429
    # ...and clients behind the same proxy are not lumped together under the proxy's address.
    assert _requests_until_refused(app.test_client(), PATH, proxy, xff="192.0.2.30") == honest


def test_https_scheme_is_taken_from_the_trusted_proxy_only(app, monkeypatch):
    seen = []
    inner = app.wsgi_app

    def recorder(environ, start_response):
        seen.append((environ["wsgi.url_scheme"], environ["REMOTE_ADDR"], environ["HTTP_HOST"]))
        return inner(environ, start_response)

    monkeypatch.setitem(app.config, "TRUSTED_PROXY_HOPS", 1)
    monkeypatch.setattr(app, "wsgi_app", recorder)
    _trust_proxies(app)
    app.test_client().get("/healthz", headers={"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Proto": "https",
                                               "X-Forwarded-Host": "evil.example"})
    assert seen == [("https", "192.0.2.1", "localhost")]
    # Without a trusted proxy the same headers change nothing.
    seen.clear()
    monkeypatch.setattr(app, "wsgi_app", recorder)
    monkeypatch.setitem(app.config, "TRUSTED_PROXY_HOPS", 0)
    _trust_proxies(app)
    app.test_client().get("/healthz", headers={"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Proto": "https"})
    assert seen == [("http", "127.0.0.1", "localhost")]


# --- shared counts in Redis --------------------------------------------------------------------

def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


WORKER = textwrap.dedent("""
    import sys
    from app import create_app
    from extensions import db
    app = create_app({"TESTING": True, "INSTANCE_PATH": sys.argv[1], "DEMO": False, "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": "sqlite:///" + sys.argv[1] + "/w.db",
                      "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
                      "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": False, "RATELIMIT_KEY_PREFIX": sys.argv[2]})
    with app.app_context():
        db.create_all()
    client = app.test_client()
    codes = [client.post("/login/NoSuchLinkToken", environ_base={"REMOTE_ADDR": "192.0.2.50"}).status_code
             for _ in range(int(sys.argv[3]))]
    print(",".join(map(str, codes)))
""")


@pytest.mark.skipif(not _redis_answers(), reason="Redis is not answering on 127.0.0.1:6379 "
                                                  "(start redis-server to run the shared rate-limit test)")
def test_two_workers_share_their_counts_through_redis(tmp_path):
    """Two processes (gunicorn's two workers) with RATELIMIT_STORAGE_URI=redis://: one limit, not two."""
    import redis

    prefix = f"pingan-test-{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)

    def worker(n: int, name: str) -> list[int]:
        folder = tmp_path / name
        folder.mkdir()
        out = subprocess.run([sys.executable, "-c", WORKER, str(folder), prefix, str(n)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=True)
        return [int(c) for c in out.stdout.strip().splitlines()[-1].split(",")]

    try:
        first = worker(12, "one")
        assert 429 not in first  # 20 a minute: 12 are allowed
        second = worker(12, "two")
        assert second[:8].count(429) == 0 and second[8:] == [429] * 4  # 12 + 8 = 20, then refused
        assert redis.Redis(host="127.0.0.1", port=6379).keys(f"*{prefix}*")
    finally:
        r = redis.Redis(host="127.0.0.1", port=6379)
        for key in r.keys(f"*{prefix}*"):
            r.delete(key)
