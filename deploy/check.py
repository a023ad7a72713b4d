"""`make deploy-check`: the shipped deploy/ files, run for real on this machine (as root).

What docs/deploy.md tells an operator to do, done here without systemd as PID 1: the service user,
the env file, `db upgrade`, then every unit's `ExecStart` (with its `EnvironmentFile`,
`Environment=`, `User=` and `WorkingDirectory=`) behind a real nginx on 127.0.0.1 that uses the
shipped site with a self-signed certificate. Then, over HTTPS through nginx: /healthz, HTTP→HTTPS,
a volunteer's sign-in and a scan, Secure cookies, the client address the rate limiter sees, static
files served by nginx itself, the upload size limit and /metrics. The units are verified with
`systemd-analyze verify` where it is installed. Everything runs on 127.0.0.1 and free ports, in a
temporary folder; a PostgreSQL database and role of its own when the server on 127.0.0.1:5432
answers (else SQLite), a Redis of its own, and a fake Bot API (tests/fake_telegram.py).
"""
from __future__ import annotations

import configparser
import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEPLOY = ROOT / "deploy"
UNITS = ["pingan-web", "pingan-bot", "pingan-sender", "pingan-scheduler"]
SERVICE_USER = "pingan"
PG_ADMIN = os.environ.get("DEPLOY_CHECK_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
METRICS_TOKEN = "deploy-check-" + uuid.uuid4().hex


class CheckFailed(Exception):
    pass


def step(message: str) -> None:
    print(f"deploy-check: {message}", flush=True)


FAILURES: list[str] = []


def expect(condition: bool, message: str, *, fatal: bool = True) -> bool:
    """A failed check stops the run when later steps need it (`fatal`), else it is reported and
    the other checks still run."""
    if not condition:
        if fatal:
            raise CheckFailed(message)
        FAILURES.append(message)
        print(f"deploy-check: FAIL {message}", file=sys.stderr, flush=True)
        return False
    step(f"ok   {message.split(':')[0]}")
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise CheckFailed(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise CheckFailed(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


# --- the units ------------------------------------------------------------------------------------
def read_unit(path: Path) -> dict[str, list[str]]:
    """[Service] settings as lists (a key may repeat, e.g. Environment=)."""
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), interpolation=None,
                                          dict_type=_MultiDict)
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return {k: v.split("\n") for k, v in parser["Service"].items()}


def unit_environment(name: str) -> dict[str, str]:
    """The `Environment=` settings of a shipped unit (without the env file): what a benchmark
    running the same command outside systemd must set too."""
    return environment_lines(read_unit(DEPLOY / "systemd" / f"{name}.service").get("Environment", []))


def environment_lines(lines: list[str]) -> dict[str, str]:
    """`Environment=` values (each may hold several quoted KEY=value pairs) as a dict."""
    env = {}
    for raw in lines:
        for item in shlex.split(raw):
            key, value = item.split("=", 1)
            env[key] = value
    return env


class _MultiDict(dict):
    def __setitem__(self, key, value):
        if key in self and isinstance(value, list) and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip().strip('"')
    return env


class Install:
    """The temporary "server": paths of the docs mapped into one folder."""

    def __init__(self, tmp: Path, app_dir: Path) -> None:
        self.tmp = tmp
        self.app_dir = app_dir
        self.env_file = tmp / "etc" / "pingan.env"
        self.state = tmp / "var-lib-pingan"
        self.run_web = tmp / "run-pingan-web"
        self.units = tmp / "units"

    def subst(self, text: str) -> str:
        return (text.replace("/opt/pingan/app", str(self.app_dir))
                .replace("/etc/pingan/pingan.env", str(self.env_file))
                .replace("/var/lib/pingan", str(self.state))
                .replace("/run/pingan-web", str(self.run_web)))


def service_env(install: Install, unit: dict[str, list[str]]) -> dict[str, str]:
    """What systemd gives the process: a plain PATH, HOME, then the env file and Environment=."""
    user = pwd.getpwnam(SERVICE_USER)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": install.subst(user.pw_dir),
           "USER": SERVICE_USER, "LOGNAME": SERVICE_USER, "LANG": "C.UTF-8"}
    for raw in unit.get("EnvironmentFile", []):
        env.update(read_env_file(Path(install.subst(raw.lstrip("-")))))
    env.update(environment_lines([install.subst(raw) for raw in unit.get("Environment", [])]))
    return env


def start_unit(install: Install, name: str, logs: Path) -> subprocess.Popen:
    unit = read_unit(DEPLOY / "systemd" / f"{name}.service")
    assert unit["User"] == [SERVICE_USER], unit["User"]
    argv = shlex.split(install.subst(unit["ExecStart"][0]))
    log = open(logs / f"{name}.log", "wb")
    return subprocess.Popen(argv, cwd=install.subst(unit["WorkingDirectory"][0]), env=service_env(install, unit),
                            user=SERVICE_USER, group=SERVICE_USER, extra_groups=[], stdout=log,
                            stderr=subprocess.STDOUT, process_group=0)


def as_service_user(install: Install, args: list[str]) -> str:
    """A command from the docs, through the shipped wrapper `pingan-flask` (paths mapped)."""
    wrapper = install.tmp / "pingan-flask"
    wrapper.write_text(install.subst((DEPLOY / "pingan-flask").read_text(encoding="utf-8")))
    wrapper.chmod(0o755)
    unit = read_unit(DEPLOY / "systemd" / "pingan-web.service")
    env = {k: v for k, v in service_env(install, unit).items() if k in ("PATH", "LANG")}
    done = subprocess.run([str(wrapper), *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise CheckFailed(f"pingan-flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def verify_units(install: Install) -> None:
    if not shutil.which("systemd-analyze"):
        step("skip systemd-analyze verify (not installed)")
        return
    install.units.mkdir(exist_ok=True)
    paths = []
    for name in UNITS:
        path = install.units / f"{name}.service"
        path.write_text(install.subst((DEPLOY / "systemd" / f"{name}.service").read_text(encoding="utf-8")))
        paths.append(str(path))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True, text=True)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    expect(done.returncode == 0 and not problems, "systemd-analyze verify of the four units: " + "\n".join(problems))


# --- the pieces around the app --------------------------------------------------------------------
def ensure_user(state: Path) -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--home-dir", "/var/lib/pingan", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", SERVICE_USER], check=True)
        step(f"created the system user {SERVICE_USER} (docs/deploy.md, step 2)")


def chown(path: Path, user: str = SERVICE_USER) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def user_can_run(app_dir: Path) -> bool:
    try:
        probe = subprocess.run([str(app_dir / ".venv" / "bin" / "python"), "-c", "import flask, gunicorn, app"],
                               cwd=app_dir, user=SERVICE_USER, group=SERVICE_USER, extra_groups=[],
                               capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    except PermissionError:
        return False
    return probe.returncode == 0


def install_copy(tmp: Path) -> Path:
    """When the service user cannot read this checkout (a clone under /root), install like the
    docs do: the project's files into an app folder, and a virtualenv made with Debian's python3
    (kept in /var/cache/pingan-deploy-check per requirements.txt, so a second run is quick)."""
    import hashlib

    step("the service user cannot use this checkout's virtualenv: installing a copy as docs/deploy.md does")
    app_dir = tmp / "opt-pingan-app"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if rel.split("/", 1)[0] in (".venv", "instance", ".git") or not src.is_file() or src.is_symlink():
            continue
        dst = app_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    for mo in ROOT.glob("translations/*/LC_MESSAGES/messages.mo"):
        shutil.copy2(mo, app_dir / mo.relative_to(ROOT))
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()[:12]
    venv = Path("/var/cache/pingan-deploy-check") / f"venv-{digest}"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r",
                              str(app_dir / "requirements.txt")], capture_output=True, text=True)
        if pip.returncode != 0:
            raise CheckFailed("pip install -r requirements.txt failed:\n" + pip.stdout + pip.stderr)
        (venv / ".complete").touch()
    (app_dir / ".venv").symlink_to(venv)
    for path in [tmp, *tmp.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, os.stat(path).st_mode | (0o055 if path.is_dir() else 0o044))
    return app_dir


def make_database(tmp: Path, state: Path) -> tuple[str, callable]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # no PostgreSQL here: the embedded database
        step(f"PostgreSQL at {PG_ADMIN} not reachable ({type(exc).__name__}); using SQLite")
        return f"sqlite:///{state / 'pingan.db'}", lambda: None
    suffix = uuid.uuid4().hex[:8]
    role, name, password = f"pingan_check_{suffix}", f"pingan_deploycheck_{suffix}", uuid.uuid4().hex
    admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    admin.execute(f"CREATE DATABASE {name} OWNER {role} ENCODING 'UTF8' TEMPLATE template0")
    host = urlparse(PG_ADMIN).hostname or "127.0.0.1"
    port = urlparse(PG_ADMIN).port or 5432

    def drop() -> None:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()

    step(f"PostgreSQL database {name} owned by role {role} (docs/deploy.md, step 3)")
    return f"postgresql://{role}:{password}@{host}:{port}/{name}", drop


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "tls" / "fullchain.pem", tmp / "tls" / "privkey.pem"
    cert.parent.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def local_nginx(site: str, nginx: Path, *, http_port: int, https_port: int, upstreams: list[int], cert: Path,
                key: Path, user: str | None = None, foreground: bool = False, connections: int = 256) -> Path:
    """The shipped site's text rewritten for 127.0.0.1 (its ports, the web instances as upstreams, a
    self-signed certificate, logs and temporary files in `nginx`) and a main `nginx.conf` including
    it. The deployment check and the district benchmark (bench/district.py) run the same site."""
    site = re.sub(r"^\s*listen \[::\].*\n", "", site, flags=re.M)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = site.replace("server 127.0.0.1:8000;", "\n    ".join(f"server 127.0.0.1:{p};" for p in upstreams))
    site = site.replace("/etc/letsencrypt/live/pingan.example.org/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/pingan.example.org/privkey.pem", str(key))
    site = site.replace("/var/log/nginx/", str(nginx) + "/")
    site = site.replace("pingan.example.org", "localhost")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (nginx / sub).mkdir(parents=True, exist_ok=True)
        if user:
            chown(nginx / sub, user)
    (nginx / "pingan.conf").write_text(site)
    main = nginx / "nginx.conf"
    head = (f"user {user};\n" if user else "") + "worker_processes 1;\n"
    main.write_text(head + f"""pid {nginx}/nginx.pid;
error_log {nginx}/error.log;
{"daemon off;" if foreground else ""}
events {{ worker_connections {connections}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {nginx}/body;
    proxy_temp_path {nginx}/proxy;
    fastcgi_temp_path {nginx}/fastcgi;
    uwsgi_temp_path {nginx}/uwsgi;
    scgi_temp_path {nginx}/scgi;
    include {nginx}/pingan.conf;
}}
""")
    return main


def nginx_config(install: Install, *, http_port: int, https_port: int, web_port: int, cert: Path, key: Path) -> Path:
    return local_nginx(install.subst((DEPLOY / "nginx" / "pingan.conf").read_text(encoding="utf-8")),
                       install.tmp / "nginx", http_port=http_port, https_port=https_port, upstreams=[web_port],
                       cert=cert, key=key, user="www-data")


# --- an HTTPS client with a cookie jar and a chosen source address ----------------------------------
class Client:
    def __init__(self, port: int, cafile: Path, source: str = "127.0.0.1") -> None:
        self.port, self.source = port, source
        self.context = ssl.create_default_context(cafile=str(cafile))
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=30,
                                           source_address=(self.source, 0))
        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        for header in resp.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(header)
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        conn.close()
        return resp, data

    def form(self, path: str, fields: dict[str, str], headers: dict | None = None):
        """A form post as a browser sends it (Flask-WTF checks the Referer on HTTPS)."""
        from urllib.parse import urlencode

        return self.request("POST", path, body=urlencode(fields).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded",
                                     "Referer": f"https://localhost:{self.port}{path}", **(headers or {})})


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: bytes) -> str:
    match = CSRF_RE.search(page.decode())
    if not match:
        raise CheckFailed("no CSRF token on the page")
    return match.group(1)


# --- the checks -----------------------------------------------------------------------------------
def run_checks(*, https_port: int, http_port: int, cert: Path, demo_output: str, fake, procs: dict) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    conn.request("GET", "/healthz", headers={"Host": "localhost"})
    resp = conn.getresponse()
    resp.read()
    expect(resp.status == 301 and (resp.getheader("Location") or "").startswith("https://localhost/healthz"),
           f"HTTP redirects to HTTPS: {resp.status} {resp.getheader('Location')}")

    phone = Client(https_port, cert)
    resp, data = phone.request("GET", "/healthz")
    expect(resp.status == 200 and json.loads(data)["status"] == "ok", f"/healthz over HTTPS via nginx: {resp.status} {data!r}")
    expect("max-age" in (resp.getheader("Strict-Transport-Security") or ""), "HSTS header on HTTPS answers", fatal=False)
    expect(bool(resp.getheader("X-Request-ID")), "the request id nginx made comes back from the app", fatal=False)

    login = re.search(r"(https://\S+/login/\S+)", demo_output)
    scan_url = re.search(r"(https://\S+/p/\S+)", demo_output)
    if not (login and scan_url):
        raise CheckFailed("demo output has no sign-in link or scan URL:\n" + demo_output)
    login_path = urlparse(login.group(1)).path
    resp, page = phone.request("GET", login_path)
    expect(resp.status == 200 and "确认登录" in page.decode(), f"the one-time sign-in page: {resp.status}")
    resp, _ = phone.form(login_path, {"csrf_token": csrf_of(page)})
    expect(resp.status == 302, f"a volunteer signs in over HTTPS: {resp.status} {_[:600]!r}")
    expect(len(phone.set_cookie_headers) >= 2 and all("; Secure" in h for h in phone.set_cookie_headers),
           "every cookie is Secure: " + " | ".join(phone.set_cookie_headers), fatal=False)
    resp, data = phone.request("GET", "/api/v1/me")
    expect(resp.status == 200, f"the phone is signed in (/api/v1/me): {resp.status} {data[:200]!r}")

    token = urlparse(scan_url.group(1)).path.rsplit("/", 1)[1]
    resp, page = phone.request("GET", f"/p/{token}")
    expect(resp.status == 200, f"the poster's scan page: {resp.status}")
    static = re.search(r'(/static/css/app\.css\?v=[0-9a-f]+)', page.decode())
    resp, data = phone.request("POST", "/api/v1/scans", body=json.dumps({"token": token, "nonce": uuid.uuid4().hex}).encode(),
                               headers={"Content-Type": "application/json"})
    body = json.loads(data)
    expect(resp.status == 200 and body.get("action") in ("check_in", "check_out"),
           f"a scan through nginx is a real check-in: {resp.status} {body}")

    expect(bool(static), "pages link static files with a content version", fatal=False)
    resp, data = phone.request("GET", static.group(1))
    expect(resp.status == 200 and resp.getheader("X-Static") == "nginx" and "immutable" in (resp.getheader("Cache-Control") or "")
           and b"{" in data, f"static files come from nginx with a long cache: {resp.status} {dict(resp.headers)}", fatal=False)

    resp, _ = phone.request("POST", "/coord/login", body=b"x" * (13 * 1024 * 1024),
                            headers={"Content-Type": "application/octet-stream"})
    expect(resp.status == 413, f"nginx refuses a body over client_max_body_size: {resp.status}", fatal=False)

    # The rate limiter must see the phone's own address (TRUSTED_PROXY_HOPS=1 with nginx's
    # X-Forwarded-For), not nginx's 127.0.0.1 for everyone, and not an address a client made up.
    # (The coordinator sign-in: 10 tries a minute per address, every try counted. The volunteer
    # PIN sign-in counts only failures and is off until an admin turns it on.)
    login_form = {"username": "nobody", "password": "wrong-password"}
    first = Client(https_port, cert, source="127.0.0.2")
    _, page = first.request("GET", "/coord/login")
    token_a = csrf_of(page)
    statuses = [first.form("/coord/login", {"csrf_token": token_a, **login_form})[0].status for _ in range(11)]
    expect(statuses[-1] == 429 and 429 not in statuses[:10], f"sign-in is rate limited per client: {statuses}", fatal=False)
    resp, _ = first.form("/coord/login", {"csrf_token": token_a, **login_form},
                         headers={"X-Forwarded-For": "203.0.113.9"})
    expect(resp.status == 429, f"a made-up X-Forwarded-For does not escape the limit: {resp.status}", fatal=False)
    second = Client(https_port, cert, source="127.0.0.3")
    _, page = second.request("GET", "/coord/login")
    # A whole budget of its own (the X-RateLimit-* headers are off: they cost a Redis call per request).
    token_b = csrf_of(page)
    others = [second.form("/coord/login", {"csrf_token": token_b, **login_form})[0].status for _ in range(10)]
    expect(429 not in others,
           f"another client address has its own limit (the limiter sees the real address): {others}", fatal=False)

    resp, _ = phone.request("GET", "/metrics")
    expect(resp.status == 404, f"/metrics without the token is 404: {resp.status}", fatal=False)
    resp, data = phone.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    text = data.decode()
    expect(resp.status == 200 and re.search(r'^pingan_scans_total\{action="(check_in|check_out)",code="ok"\} 1\.0$',
                                             text, re.M) is not None,
           f"/metrics with the token adds up the gunicorn workers (multiprocess mode): {resp.status}\n{text[:1500]}", fatal=False)

    fake.wait_for(lambda: fake.calls and any(c.method == "getUpdates" for c in fake.calls), timeout=30)
    step("ok   the bot unit polls the Bot API")
    time.sleep(1)
    for name, proc in procs.items():
        expect(proc.poll() is None, f"{name} is still running: exit {proc.poll()}")


def main() -> int:
    if os.geteuid() != 0:
        print("make deploy-check runs as root (it creates the service user and starts nginx)", file=sys.stderr)
        return 2
    for tool in ("nginx", "openssl"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is missing: apt-get install {tool}", file=sys.stderr)
            return 2
    from tests.fake_telegram import FakeTelegram

    tmp = Path(tempfile.mkdtemp(prefix="pingan-deploy-check-"))
    os.chmod(tmp, 0o701)  # nosec B103 - the service user and nginx workers must pass through; nobody can list it
    procs: dict[str, subprocess.Popen] = {}
    cleanups: list = []
    logs = tmp / "logs"
    logs.mkdir()
    ok = False
    try:
        ensure_user(tmp)
        app_dir = ROOT if user_can_run(ROOT) else install_copy(tmp)
        step(f"app folder {app_dir}")
        install = Install(tmp, app_dir)
        for path in (install.state, install.state / "instance", install.state / "backups", install.run_web,
                     install.run_web / "metrics"):
            path.mkdir(parents=True, exist_ok=True)
            chown(path)
        verify_units(install)

        web_port, http_port, https_port = free_port(), free_port(), free_port()
        redis_url = "memory://"
        if shutil.which("redis-server"):
            redis_port = free_port()
            redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=open(logs / "redis.log", "wb"), stderr=subprocess.STDOUT)
            cleanups.append(lambda: (redis.terminate(), redis.wait(10)))
            wait_port(redis_port, proc=redis)
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        database_url, drop_db = make_database(tmp, install.state)
        cleanups.append(drop_db)
        fake = FakeTelegram().start()
        cleanups.append(fake.stop)

        env = read_env_file(DEPLOY / "pingan.env.example")
        env.update({"PUBLIC_BASE_URL": f"https://localhost:{https_port}", "DATABASE_URL": database_url,
                    "INSTANCE_PATH": str(install.state / "instance"), "RATELIMIT_STORAGE_URI": redis_url,
                    "GUNICORN_BIND": f"127.0.0.1:{web_port}", "METRICS_TOKEN": METRICS_TOKEN,
                    "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.base_url,
                    "BACKUP_DIR": str(install.state / "backups"), "SCHEDULER_TICK_SECONDS": "5"})
        install.env_file.parent.mkdir(parents=True)
        install.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        os.chown(install.env_file, 0, pwd.getpwnam(SERVICE_USER).pw_gid)
        os.chmod(install.env_file, 0o640)

        step("pingan-flask db upgrade (docs/deploy.md, step 6)")
        as_service_user(install, ["db", "upgrade"])
        demo_output = as_service_user(install, ["demo"])
        out = as_service_user(install, ["backup"])
        expect(any((install.state / "backups").glob("pingan-*")), f"flask backup as the service user: {out.strip()}")

        for name in UNITS:
            procs[name] = start_unit(install, name, logs)
        wait_port(web_port, proc=procs["pingan-web"])
        cert, key = self_signed(tmp)
        conf = nginx_config(install, http_port=http_port, https_port=https_port, web_port=web_port, cert=cert, key=key)
        test = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
        expect(test.returncode == 0, "nginx -t accepts the shipped site: " + test.stderr)
        procs["nginx"] = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"],
                                          stdout=open(logs / "nginx.log", "wb"), stderr=subprocess.STDOUT)
        wait_port(https_port, proc=procs["nginx"])
        run_checks(https_port=https_port, http_port=http_port, cert=cert, demo_output=demo_output, fake=fake,
                   procs=procs)
        ok = not FAILURES
    except CheckFailed as exc:
        print(f"deploy-check: FAIL {exc}", file=sys.stderr)
    finally:
        for name, proc in reversed(list(procs.items())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM) if name != "nginx" else proc.send_signal(signal.SIGQUIT)
        for name, proc in procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep cleaning up
                print(f"deploy-check: cleanup: {exc!r}", file=sys.stderr)
        if not ok:
            for log in sorted(logs.glob("*.log")):
                print(f"----- {log.name} (last 40 lines) -----", file=sys.stderr)
                print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            nginx_error = tmp / "nginx" / "error.log"
            if nginx_error.exists():
                print("----- nginx error.log -----\n" + nginx_error.read_text()[-3000:], file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    step("passed" if ok else f"FAILED ({len(FAILURES)} failed checks)" if FAILURES else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
