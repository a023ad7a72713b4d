"""`python -m delivery`: the outbox sender as its systemd unit runs it (same as `flask --app app sender`)."""
from cli import run_worker
from cli.sender import sender

run_worker(sender, "python -m delivery")
