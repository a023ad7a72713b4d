"""The coordinator web (平安办): one blueprint per area, every route behind a role check."""
from __future__ import annotations

import base64

from flask import Blueprint, Flask, redirect, request, url_for
from werkzeug.exceptions import Forbidden

from services.qr import qr_png
from web.auth import current_user


def protect(bp: Blueprint, *, admin: bool = False, leaders: bool = False) -> Blueprint:
    """Guard every route of a blueprint at once, so a new view cannot forget its check.

    Staff (admins and coordinators) by default; `admin` for admins only; `leaders` also lets in
    the team leaders an admin designates (the on-patrol board).
    """

    @bp.before_request
    def _check_role():
        user = current_user()
        if user is None:
            return redirect(url_for("coord_auth.login", next=request.full_path.rstrip("?")))
        if admin and not user.is_admin:
            raise Forbidden()
        if not leaders and not user.is_staff:
            raise Forbidden()
        return None

    return bp


def qr_data_uri(data: str) -> str:
    """An inline QR image (self-contained page, no extra request, nothing from a CDN)."""
    return "data:image/png;base64," + base64.b64encode(qr_png(data, box_size=6)).decode("ascii")


def import_page(run_import, *, title: str, help_lines: list[str], back: str, **extra):
    """The shared upload page of every all-or-nothing import: GET shows the form; POST runs
    `run_import(data, filename)` and shows the report (every bad row) or flashes the summary."""
    from flask import flash, render_template

    from services.i18n import _

    report = None
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("请选择要导入的文件"), "error")
        else:
            report = run_import(upload.read(), upload.filename)
            if report.ok:
                _audit_import(report, upload.filename)
                flash(report.summary(), "success")
    return render_template("coord/import.html", report=report, title=title, help_lines=help_lines, back=back,
                           **extra)


def _audit_import(report, filename: str) -> None:
    """Every import that wrote something goes into the coordinators' action log."""
    from extensions import db
    from services.audit_log import record_action
    from web.auth import actor

    record_action(db.session, actor(), "import", report.kind,
                  f"file={filename[:100]}; rows={report.total_rows}; created={report.created}; "
                  f"updated={report.updated}; unchanged={report.unchanged}")
    db.session.commit()


def audit_import(report, filename: str) -> None:
    """For import views that do not use `import_page` (the programme ledgers)."""
    if report.ok:
        _audit_import(report, filename)


def register(app: Flask) -> None:
    from web.coord import (accounts, attendance, audit, auth, board, events, exports, inbox, notices, points,
                           programme, volunteers)

    for module in (auth, volunteers, points, events, attendance, board, notices, programme, accounts, audit, inbox,
                   exports):
        app.register_blueprint(module.bp)
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.globals["waiting_review_count"] = _waiting_review_count
    from services.people import device_label

    app.jinja_env.filters["device_label"] = device_label


def _waiting_review_count() -> int:
    """The number in the menu: records waiting for a coordinator's decision."""
    from extensions import db
    from services.board import waiting_review_count

    return waiting_review_count(db.session)
