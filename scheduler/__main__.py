"""`python -m scheduler`: the scheduled jobs as their systemd unit runs them (same as `flask --app app scheduler`)."""
from cli import run_worker
from cli.programme import scheduler

run_worker(scheduler, "python -m scheduler")
