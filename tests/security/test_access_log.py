"""Access logs do not record sign-in link or card tokens (issue 10, item 12)."""
from __future__ import annotations

import logging

from access_log import TokenMaskFilter, install, mask_secrets

SECRET = "s3cr3tTOKENabcdefghijklmnop"


def test_token_segments_and_parameters_are_masked():
    assert mask_secrets(f"GET /login/{SECRET} HTTP/1.1") == "GET /login/*** HTTP/1.1"
    assert mask_secrets(f"POST /card/{SECRET}?next=/me HTTP/1.1") == "POST /card/***?next=/me HTTP/1.1"
    assert mask_secrets(f"https://pingan.example.cn/login/{SECRET}") == "https://pingan.example.cn/login/***"
    assert mask_secrets(f"/survey/{SECRET}/answer") == "/survey/***/answer"
    assert mask_secrets(f"https://t.me/pingan_bot?start={SECRET}") == "https://t.me/pingan_bot?start=***"
    assert mask_secrets(f"GET /x?a=1&token={SECRET} HTTP/1.1") == "GET /x?a=1&token=*** HTTP/1.1"
    # Ordinary paths are left alone, public poster tokens too.
    for plain in ("GET /coord/volunteers/3/card.pdf HTTP/1.1", "GET /p/1.1.abcdef HTTP/1.1", "GET /me HTTP/1.1"):
        assert mask_secrets(plain) == plain


def _capture(logger_name: str, msg, args) -> str:
    logger = logging.getLogger(logger_name)
    record = logger.makeRecord(logger_name, logging.INFO, __file__, 1, msg, args, None)
    assert TokenMaskFilter().filter(record)
    return record.getMessage()


def test_werkzeug_and_gunicorn_records_are_masked():
    line = _capture("werkzeug", '%s - - [x] "%s" %s %s', ("127.0.0.1", f"GET /login/{SECRET} HTTP/1.1", "200", "-"))
    assert SECRET not in line and "/login/***" in line
    atoms = {"h": "127.0.0.1", "r": f"POST /card/{SECRET} HTTP/1.1", "U": f"/card/{SECRET}", "q": "",
             "f": f"https://pingan.example.cn/login/{SECRET}", "s": "302"}
    line = _capture("gunicorn.access", '%(h)s "%(r)s" %(U)s %(s)s "%(f)s"', atoms)
    assert SECRET not in line and line.count("***") == 3


def test_the_app_and_gunicorn_config_install_the_filter(app):
    install()
    assert any(isinstance(f, TokenMaskFilter) for f in logging.getLogger("werkzeug").filters)
    assert any(isinstance(f, TokenMaskFilter) for f in logging.getLogger("gunicorn.access").filters)
    import runpy
    from pathlib import Path

    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    assert conf["accesslog"] == "-" and conf["forwarded_allow_ips"] == ""
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("werkzeug")
    was_disabled, logger.disabled = logger.disabled, False
    logger.addHandler(handler)
    try:
        logger.warning('"%s" %s', f"GET /login/{SECRET} HTTP/1.1", 200)
    finally:
        logger.removeHandler(handler)
        logger.disabled = was_disabled
    assert SECRET not in stream.getvalue() and "/login/***" in stream.getvalue()


def test_gunicorn_access_log_of_a_real_request_is_masked(app):
    """gunicorn's own Logger.access() → the filter on `gunicorn.access` (what `make serve` writes)."""
    import datetime
    import io
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    import runpy
    from pathlib import Path

    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", conf["access_log_format"])  # with a header atom the request lacks
    glog = Logger(cfg)
    stream = io.StringIO()
    for h in glog.access_log.handlers:
        h.setStream(stream)
    install()
    glog.access_log.disabled = False  # Alembic's fileConfig in the test session disables old loggers
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/login/{SECRET}", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": f"/login/{SECRET}", "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1"}
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
    glog.access(resp, SimpleNamespace(headers=[]), environ, datetime.timedelta(seconds=0))
    out = stream.getvalue()
    assert "/login/***" in out and SECRET not in out
    assert '"-"' in out  # the missing X-Forwarded-For is logged as "-", not a KeyError


def test_an_error_on_a_sign_in_url_does_not_log_the_token(app):
    """Flask logs "Exception on <path>" through the app's logger: masked there too."""
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    app.logger.addHandler(handler)
    was_disabled, app.logger.disabled = app.logger.disabled, False  # Alembic's fileConfig disables it
    try:
        with app.test_request_context(f"/login/{SECRET}"):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                app.log_exception(__import__("sys").exc_info())
    finally:
        app.logger.removeHandler(handler)
        app.logger.disabled = was_disabled
    assert "Exception on /login/***" in stream.getvalue() and SECRET not in stream.getvalue()
