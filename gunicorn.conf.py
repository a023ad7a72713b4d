"""gunicorn settings for `make serve` and the deployment (`gunicorn -c gunicorn.conf.py 'app:create_app()'`).

Command-line options (--workers, --bind) override these. The access log goes to stdout with the
sign-in link and card tokens masked (see access_log.py); behind nginx set TRUSTED_PROXY_HOPS=1 so
the app sees the real client address, and let nginx's own log use the masked format in
docs/security.md.
"""
import access_log

wsgi_app = "app:create_app()"
workers = 2
bind = "127.0.0.1:5000"
accesslog = "-"
# The address gunicorn sees is nginx's; the real client is the last X-Forwarded-For entry.
access_log_format = '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
# Forwarded headers are handled by the app (ProxyFix with TRUSTED_PROXY_HOPS), not by gunicorn.
forwarded_allow_ips = ""

access_log.install()


def post_worker_init(worker):
    """A worker's logging is set up after fork: make sure the mask is on its access logger too."""
    access_log.install()
    from web.indicator_cache import warm_up
    warm_up(getattr(worker, "wsgi", None))  # the year's indicators computed before the office asks
