"""Exports: answered in the request when small, queued for the scheduler's worker when large
(services/export_jobs.py), with a progress page and the download of the built file."""
from __future__ import annotations

import io
import tempfile
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, send_file, url_for
from flask_babel import get_locale

from extensions import db
from keys import data_cipher
from services.audit_log import record_action
from services.clock import SHANGHAI
from services.export_jobs import (MIMETYPES, audit_detail, audit_target, build_tables, count_rows, download_name,
                                  download_path, export_dir, job_for, job_params, jobs_of, kind_label, queue_export)
from services.roster import record_roster_export
from services.spreadsheet import Table, write_table
from web.auth import actor, current_user
from web.coord import protect
from web.runtime import clock, now

bp = protect(Blueprint("coord_exports", __name__, url_prefix="/coord/exports"))

SPOOL_BYTES = 8 * 1024 * 1024  # an export larger than this is spooled to a temporary file on disk


def _today():
    return now().astimezone(SHANGHAI).date()


def send_tables(tables: list[Table], fmt: str, name: str, *, audit=None, after=None):
    """Write streamed tables into a temporary file (RAM up to SPOOL_BYTES, then disk) and send it.
    `after(rows)` runs once the file is written (e.g. the personal-data log); `audit(rows)` gives
    the action-log (target, detail) entry, committed before the answer."""
    fh = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    rows = write_table(fh, fmt, tables)
    if after is not None:
        after(rows)
    if audit is not None:
        target, detail = audit(rows)
        record_action(db.session, actor(), "export", target, detail)
    db.session.commit()
    size = fh.tell()
    fh.seek(0)
    if size <= SPOOL_BYTES:  # still in memory: hand over the bytes and close the spool now
        body: Any = io.BytesIO(fh.read())
        fh.close()
    else:  # on disk: sent in chunks, closed with the response
        body = fh
    return send_file(body, mimetype=MIMETYPES[fmt], download_name=name)


def send_or_queue(kind: str, params: dict[str, Any], fmt: str):
    """The export in this answer if it has at most EXPORT_SYNC_MAX_ROWS rows (counted first, by
    COUNT queries); otherwise queued for the scheduler (or the same export already on its way),
    and the coordinator is sent to its progress page."""
    today = _today()
    total = count_rows(db.session, kind, params, today=today)
    if total > int(current_app.config["EXPORT_SYNC_MAX_ROWS"]):
        job, _created = queue_export(db.session, user_id=current_user().id, kind=kind, params=params, fmt=fmt,
                                     rows_total=total, locale=str(get_locale() or "zh"), clock=clock())
        return redirect(url_for("coord_exports.detail", job_id=job.id))
    tables = build_tables(db.session, kind, params, today=today, cipher=data_cipher())

    def after(rows: int) -> None:
        if kind == "roster" and params.get("with_id_numbers"):
            record_roster_export(db.session, actor=actor(), rows=rows, team=params.get("team"))

    return send_tables(tables, fmt, download_name(kind, params, fmt), after=after,
                       audit=lambda rows: (audit_target(kind), audit_detail(kind, params, fmt, rows)))


@bp.get("/")
def index():
    user = current_user()
    return render_template("coord/exports/index.html", jobs=jobs_of(db.session, user), kind_label=kind_label,
                           params_of=job_params)


@bp.get("/<int:job_id>")
def detail(job_id: int):
    job = job_for(db.session, job_id, current_user())
    params = job_params(job)
    return render_template("coord/exports/detail.html", job=job, params=params, kind_label=kind_label,
                           retention_days=int(current_app.config["EXPORT_RETENTION_DAYS"]),
                           again=_again_url(job.kind, params, job.format))


def _again_url(kind: str, params: dict[str, Any], fmt: str) -> str:
    if kind == "roster":
        return url_for("coord_volunteers.export" if fmt == "xlsx" else "coord_volunteers.export_csv",
                       team=params.get("team"), with_id_numbers="1" if params.get("with_id_numbers") else None)
    endpoint = "coord_programme.export" if fmt == "xlsx" else "coord_programme.export_csv"
    return url_for(endpoint, kind=kind, year=params.get("year"))


@bp.get("/<int:job_id>/status")
def status(job_id: int):
    """The progress page's script polls this (no JavaScript: the page refreshes itself)."""
    job = job_for(db.session, job_id, current_user())
    percent = min(100, int(job.rows_done * 100 / job.rows_total)) if job.rows_total else (100 if job.finished else 0)
    return jsonify({"id": job.id, "status": job.status, "rows_done": job.rows_done, "rows_total": job.rows_total,
                    "percent": percent, "error_code": job.error_code,
                    "download_url": url_for(".download", job_id=job.id) if job.status == "done" else None})


@bp.get("/<int:job_id>/download")
def download(job_id: int):
    """The built file, for the user who asked or an admin; every download is in the action log."""
    job = job_for(db.session, job_id, current_user())
    path = download_path(job, export_dir(current_app.config["INSTANCE_PATH"]))
    params = job_params(job)
    record_action(db.session, actor(), "export", audit_target(job.kind),
                  audit_detail(job.kind, params, job.format, job.rows_done) + f"; job={job.id}")
    db.session.commit()
    resp = send_file(path, mimetype=MIMETYPES[job.format], download_name=download_name(job.kind, params, job.format),
                     as_attachment=True, max_age=0)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
