"""`python -m bot`: the Telegram bot as its systemd unit runs it (same options as `flask --app app bot`)."""
from cli import run_worker
from cli.bot import bot

run_worker(bot, "python -m bot")
