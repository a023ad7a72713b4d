"""Web adapters: blueprints that translate HTTP to service calls and back."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from flask import Flask, current_app, g, jsonify, make_response, render_template, request, session
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from extensions import db
from services.clock import local_zone
from services.errors import DomainError
from services.health import storage_error
from services.i18n import _


# HTTP status for a refusal code; any other code is a 400 (or 409 for "..._taken").
DOMAIN_STATUS = {"not_found": 404, "not_signed_in": 401, "bad_token": 404, "point_revoked": 410,
                 "point_inactive": 410, "volunteer_withdrawn": 403, "outside_geofence": 403, "no_location": 403,
                 "shift_full": 409, "no_active_shift": 409, "wrong_event": 409, "link_used": 410,
                 "link_expired": 410, "card_revoked": 410, "uninsured": 403, "forbidden": 403,
                 "bad_location": 422, "bad_client_time": 422, "offline_too_old": 422, "offline_superseded": 422,
                 "export_not_ready": 409, "export_expired": 410, "too_many_exports": 429}


# No inline script or style anywhere: behaviours live in static/js (app.js handles data-confirm,
# data-autosubmit and data-select), so an injected <script> or onerror= attribute cannot run.
# QR codes are inline `data:` images. Sign-in URLs carry secrets, hence Referrer-Policy.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "geolocation=(self), camera=(self), microphone=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# Pages and answers about people: the office's pages and downloads, a volunteer's own pages and
# API answer, and a poster's page (the signed-in volunteer's name and hours).
PERSONAL_PATHS = ("/coord/", "/me/", "/p/")
PERSONAL_PAGES = ("/coord", "/me", "/api/v1/me")


def _about_people(path: str) -> bool:
    return path in PERSONAL_PAGES or path.startswith(PERSONAL_PATHS)


def _revalidated(response) -> bool:
    return "no-store" in (response.headers.get("Cache-Control") or "") or bool(response.headers.get("ETag")) \
        and "private" in (response.headers.get("Cache-Control") or "")


def domain_status(exc: DomainError) -> int:
    return DOMAIN_STATUS.get(exc.code) or (409 if exc.code.endswith("_taken") else 400)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def api_error(code: str, message: str, status: int, **details):
    """The one error shape of the JSON API."""
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return jsonify(body), status


@lru_cache(maxsize=256)
def static_version(folder: str, filename: str) -> str:
    try:
        return hashlib.sha256((Path(folder) / filename).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def http_message(code: int | None) -> str | None:
    """The JSON API's message for an HTTP error without one of its own, in the request's language."""
    return {
        400: _("请求格式不正确（不是有效的 JSON），没有做任何修改"),
        401: _("请先登录"),
        403: _("没有权限"),
        404: _("找不到这个地址"),
        405: _("不支持这种请求方式"),
        413: _("提交的内容太大，没有做任何修改"),
        415: _("请求格式不正确，没有做任何修改"),
        422: _("提交的内容有误（见 details.fields），没有做任何修改"),
    }.get(code or 0)


def wait_words(seconds: float) -> str:
    """How long to wait, in words a person reads at a street corner."""
    seconds = max(int(seconds + 0.999), 1)
    if seconds <= 90:
        return _("%(n)d 秒", n=seconds)
    minutes = -(-seconds // 60)
    if minutes < 60:
        return _("%(n)d 分钟", n=minutes)
    return _("%(n)d 小时", n=-(-minutes // 60))


def _retry_after(exc) -> float:
    """Seconds until the breached limit lets the next try through (Flask-Limiter's window)."""
    import time

    from extensions import limiter

    try:
        current = limiter.current_limit
        if current is not None and current.reset_at:
            return max(current.reset_at - time.time(), 1)
    except Exception:  # noqa: BLE001 - the words fall back to the limit's own window
        pass
    limit = getattr(getattr(exc, "limit", None), "limit", None)
    return float(limit.get_expiry()) if limit is not None else 60.0


def too_many(exc):
    seconds = _retry_after(exc)
    message = _("尝试太频繁了，请 %(w)s后再试。", w=wait_words(seconds))
    if _wants_json():
        body, status = api_error("too_many_requests", message, 429)
        response = make_response(body, status)
    else:
        response = make_response(render_template("errors/http.html", error=exc, message=message), 429)
    response.headers["Retry-After"] = str(int(-(-seconds // 1)))
    return response


def register_web(app: Flask) -> None:
    from web import api, channels, coord, health, main, scan, signin
    from web.params import IdConverter

    app.url_map.converters["int"] = IdConverter   # before any route is added: they compile with it
    app.register_blueprint(health.bp)
    app.register_blueprint(main.bp)
    app.register_blueprint(signin.bp)
    app.register_blueprint(scan.bp)
    coord.register(app)
    channels.register(app)
    api.init_api(app)
    from web.ratelimits import identify_phones_first
    identify_phones_first(app)
    from web.metrics import register_metrics
    register_metrics(app)
    from web import indicator_cache
    indicator_cache.init_app(app)

    @app.before_request
    def _forget_identity() -> None:
        """Identity is cached on `g` per request; a reused app context (tests, CLI) must not leak it."""
        for key in ("coord_user", "volunteer", "device", app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")):
            g.pop(key, None)

    @app.before_request
    def _refuse_nul():
        """A NUL byte is never meaningful input, and PostgreSQL refuses it in text (a 500 from any
        anonymous request that reaches a query): refuse it up front, in the path, query or form."""
        def has_nul(multi) -> bool:
            return any("\x00" in k or any("\x00" in v for v in multi.getlist(k)) for k in multi.keys())

        if "\x00" in request.path or has_nul(request.args) or (request.method != "GET" and has_nul(request.form)):
            error = DomainError("nul_in_input", _("请求中含有无效字符（空字符），未做任何修改"))
            if _wants_json():
                return api_error(error.code, error.message, 400)
            return render_template("volunteer/refused.html", error=error), 400

    @app.after_request
    def _keep_sessions(response):
        """A session that exists (CSRF secret, coordinator) outlives the browser session: a scan
        page left open, or a phone browser killed in the background, still posts hours later."""
        if session and not session.permanent:
            session.permanent = True
        return response

    @app.after_request
    def _security_headers(response):
        """Every response, pages and API alike (issue 10, item 12): see docs/security.md."""
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure or app.config["PUBLIC_BASE_URL"].startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if _about_people(request.path) and not _revalidated(response):
            # Names, phone numbers and hours: not kept by a shared phone's browser or a proxy. A
            # download's `no-cache` from send_file is replaced too; only an answer revalidated
            # by its ETag (the board's rows) keeps its own header.
            response.headers["Cache-Control"] = "private, no-store"
        return response

    zone = local_zone(app.config["TIMEZONE"])
    app.jinja_env.globals["get_locale"] = get_locale

    def language_return() -> str:
        """Where the language switch leads back to: this page with its query (a point's board, page
        3 of a list), keeping a `next` only when it is a path on this site (`safe_next`), so the
        switch never carries someone else's address."""
        from urllib.parse import urlencode

        from web.auth import safe_next

        args = [(k, v) for k, v in request.args.items(multi=True)
                if k != "next" or safe_next(v, "") == v]
        return request.path + ("?" + urlencode(args, safe="/") if args else "")

    app.jinja_env.globals["language_return"] = language_return

    @app.url_defaults
    def _static_version(endpoint: str, values: dict) -> None:
        """`/static/x.css?v=<content hash>`: nginx may cache static files for a year, and a new
        release still reaches every phone at once (docs/deploy.md)."""
        if endpoint == "static" and "filename" in values and "v" not in values:
            values["v"] = static_version(app.static_folder, values["filename"])

    from services.hours import hours_text
    app.add_template_filter(hours_text, "hours")
    from services.phrases import localized
    app.add_template_filter(localized, "tr")   # a shared report's phrase in this page's language

    @app.template_filter("local")
    def local_filter(value, fmt: str = "%Y-%m-%d %H:%M"):
        """Times are stored in UTC and shown in the programme's zone (Asia/Shanghai)."""
        if value is None:
            return ""
        return value.astimezone(zone).strftime(fmt)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 429:
            return too_many(exc)
        if _wants_json():
            data = getattr(exc, "data", None) or {}
            details = {}
            if "messages" in data:
                details["fields"] = data["messages"]
            # Werkzeug's own descriptions are English sentences for developers; a phone shows the
            # message to the volunteer (the offline queue lists refused scans), so it says in the
            # page's language what went wrong and that nothing changed. A description the code gave
            # itself (not the class default) is kept.
            own = exc.description if exc.description != type(exc).description else None
            message = data.get("message") or own or http_message(exc.code) or exc.description or exc.name
            return api_error((exc.name or "error").lower().replace(" ", "_"), message, exc.code or 500, **details)
        return render_template("errors/http.html", error=exc), exc.code

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        """A form without a valid token changes nothing; say so plainly and offer the way back."""
        error = DomainError("csrf_failed", _("页面已过期或不完整（浏览器可能清除了登录信息）。请返回并刷新页面后再操作一次，"
                                             "本次没有做任何修改。"))
        if _wants_json():
            return api_error(error.code, error.message, 400)
        return render_template("volunteer/refused.html", error=error, retry=request.path), 400

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unavailable(exc: DBAPIError):
        """The database is down, restarting, full or read-only: nothing was recorded, say so (503,
        retry soon) instead of a 500. The pool's pre-ping reconnects once it is back."""
        try:
            db.session.rollback()
        except Exception:  # the connection is gone; the session is discarded at teardown anyway
            pass
        error = storage_error(exc)
        from web.metrics import DB_UNAVAILABLE
        DB_UNAVAILABLE.inc()
        g.scan_outcome = ("error", error.code)
        current_app.logger.warning("database unavailable: %s (%s)", error.code, type(exc.orig or exc).__name__)
        if _wants_json():
            response = api_error(error.code, error.message, 503)[0]
        else:
            retry = request.path if request.method == "POST" and request.path.startswith("/p/") else None
            response = current_app.make_response((render_template("errors/unavailable.html", error=error,
                                                                   retry=retry), 503))
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        from extensions import db

        db.session.rollback()  # bad input changes nothing (and a pending too-long value must not flush again)
        status = domain_status(exc)
        if _wants_json():
            return api_error(exc.code, exc.message, status)
        return render_template("errors/domain.html", error=exc), status
