"""Command-line adapters (`flask --app app ...`): the same services as the web."""
from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    from cli import attendance, backup, bot, demo, imports, messages, points, programme, sender, users, volunteers

    app.cli.add_command(users.users)
    app.cli.add_command(imports.import_group)
    app.cli.add_command(demo.demo)
    app.cli.add_command(volunteers.volunteers)
    app.cli.add_command(points.points)
    app.cli.add_command(attendance.attendance)
    app.cli.add_command(bot.bot)
    app.cli.add_command(sender.sender)
    app.cli.add_command(messages.notices)
    app.cli.add_command(messages.surveys)
    app.cli.add_command(programme.indicators)
    app.cli.add_command(programme.report)
    app.cli.add_command(programme.digest)
    app.cli.add_command(programme.programme_year_start)
    app.cli.add_command(programme.scheduler)
    app.cli.add_command(backup.backup)
    app.cli.add_command(backup.restore)
    for command in _all_commands(app.cli):
        command.callback = _clear_database_errors(command.callback)


def _all_commands(group):
    import click

    for command in group.commands.values():
        if isinstance(command, click.Group):
            yield from _all_commands(command)
        elif command.callback is not None:
            yield command


def _clear_database_errors(callback):
    """A full disk, a read-only database or a database that is down ends a command with one clear
    line (and exit 1), not a traceback; the transaction was rolled back, nothing half-written."""
    import functools

    import click
    from sqlalchemy.exc import InterfaceError, OperationalError

    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            from services.health import storage_error

            error = storage_error(exc)
            raise click.ClickException(f"{error.code}: {error.message}") from exc
    return wrapper


def run_worker(command, prog_name: str) -> None:
    """`python -m bot`, `python -m delivery`, `python -m scheduler`: the long-running command, as
    its systemd unit starts it, on `create_app(worker=True)`. The `flask` CLI would load every
    command and plugin (Flask-Migrate brings Alembic) and the app the web and the commands need, a
    fifth of these processes' memory for nothing; `flask --app app bot|sender|scheduler` still works
    the same way for a developer."""
    from app import create_app

    app = create_app(worker=True)
    command.callback = _clear_database_errors(command.callback)
    with app.app_context():
        command.main(prog_name=prog_name)
