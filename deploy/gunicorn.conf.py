"""gunicorn settings for the pingan-web unit (`gunicorn --config deploy/gunicorn.conf.py 'app:create_app()'`).

Prometheus multiprocess mode: every worker writes its counters to files in
PROMETHEUS_MULTIPROC_DIR and /metrics adds them up; the directory is emptied when the master starts
(stale files would count old workers forever) and a dead worker's live gauges are dropped.
"""
import os
import shutil

import access_log  # masks sign-in secrets in gunicorn's error log (see access_log.py)

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Forwarded headers are the app's (ProxyFix with TRUSTED_PROXY_HOPS=1), not gunicorn's.
forwarded_allow_ips = ""
# One line per request comes from the app itself (request id, route, status, duration, without
# the secret part of sign-in URLs); gunicorn's access log would print the raw paths.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "pingan-web"
# gunicorn's control socket (in $HOME/.gunicorn) is not used; the unit's ExecReload sends HUP.
control_socket_disable = True


access_log.install()


def post_worker_init(worker):
    access_log.install()
    from web.indicator_cache import warm_up
    warm_up(getattr(worker, "wsgi", None))  # the year's indicators computed before the office asks


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
