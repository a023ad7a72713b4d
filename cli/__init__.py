"""Command-line adapters (`flask --app app ...`): the same services as the web."""
from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    from cli import attendance, bot, demo, imports, messages, points, programme, sender, users, volunteers

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
