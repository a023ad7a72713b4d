"""Coordinator pages for the programme year: indicator dashboard and drill-down, ledgers
(insurance, equipment, budget, complaints, documents), settings, digest and exports."""
from __future__ import annotations

import io
import uuid
from datetime import date


from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import func, select

from extensions import db
from keys import data_cipher
from models.messaging import SurveyRound
from models.programme import (BUDGET_LINES, Complaint, EquipmentDelivery, EquipmentIssue, Expenditure,
                              InsuranceCover, InsurancePolicy, ProgrammeDocument)
from models.volunteer import Volunteer
from services.clock import local_date
from services.digest import digest_text, send_digest
from services.errors import DomainError
from services.export_jobs import PROGRAMME_KINDS
from services.exports import self_evaluation_workbook
from services.audit_log import record_action
from services.i18n import _
from services.messaging import message_reach, reach_text
from services.indicators import compute_indicators
from services.indicator_views import (ALL_DRILLDOWNS, drilldown, drilldown_page, drilldown_table, evidence_lines,
                                      gap_text, hours_reminder_text, histogram_chart, remind_below_target, roster_drilldown_page,
                                      satisfaction_chart, weekly_chart)
from services.self_evaluation import (QUALITATIVE, default_weights, evaluate, qualitative_scores_for,
                                      set_qualitative_scores, set_weights, weights_for)
from services.programme_year import holds_data, programme_year_of, set_year_start, year_dates, year_start
from services.programme import (LINE_NAMES, add_complaint, add_delivery, add_document, add_expenditure,
                                budget, close_complaint, create_policy, import_complaints, import_deliveries, import_expenditures,
                                document_type, import_insured, import_issues, money,
                                programme_year, set_budget, update_year)
from services.spreadsheet import workbook_bytes, workbook_to_csv
from web.auth import actor, current_user
from web.indicator_cache import cached_indicators
from web.params import db_int, id_value, year_arg
from web.coord import audit_import, protect
from web.coord.exports import send_or_queue, send_tables
from web.runtime import clock, now, scan_rules

bp = protect(Blueprint("coord_programme", __name__, url_prefix="/coord/programme"))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _year() -> int:
    return year_arg() or programme_year_of(db.session, _today())


def _today() -> date:
    """In the programme's zone (TIMEZONE), as the API and the scheduler count it: the stored
    indicators are kept per local day."""
    return local_date(now(), scan_rules().zone)


def _date(name: str) -> date:
    try:
        return date.fromisoformat(request.form.get(name, ""))
    except ValueError:
        raise DomainError("bad_date", _("请填写有效的日期")) from None


def _int(name: str) -> int:
    try:
        return int(request.form.get(name, ""))
    except ValueError:
        raise DomainError("bad_number", _("请填写整数")) from None


def _back(endpoint: str, **kw):
    return redirect(url_for(endpoint, year=_year(), **kw))


# The dashboard, the drill-downs and the digest preview share one cached report (one computation per
# worker per change, not one per page): the drill-downs need up to this much evidence.
DRILL_EVIDENCE = 2000


@bp.get("/")
def dashboard():
    year = _year()
    report = cached_indicators(year, today=_today(), evidence_limit=DRILL_EVIDENCE)
    charts = {"weekly": weekly_chart(report), "histogram": histogram_chart(report),
              "satisfaction": satisfaction_chart(report)}
    return render_template("coord/programme/dashboard.html", report=report, year=year, charts=charts,
                           gap_text=gap_text)


def _drill_args() -> dict:
    sort = request.args.get("sort", type=db_int)
    return {"team": (request.args.get("team") or "").strip() or None, "sort": sort,
            "descending": request.args.get("desc") == "1"}


@bp.get("/indicator/<int:number>")
def indicator(number: int):
    if not 1 <= number <= 14:
        abort(404)
    year = _year()
    report = cached_indicators(year, today=_today(), evidence_limit=DRILL_EVIDENCE)
    args = _drill_args()
    page = request.args.get("page", 1, type=db_int)
    if number == 4:  # the whole roster: filtered, sorted and paged in the database
        table, pg = roster_drilldown_page(db.session, report, page=page, **args)
    else:
        table = drilldown(db.session, report, number, **args)
        pg = drilldown_page(table, page)
    return render_template("coord/programme/indicator.html", report=report, row=report.row(number), year=year,
                           table=table, pg=pg, args=args, figures=evidence_lines(report.row(number).evidence or {}),
                           nonce=uuid.uuid4().hex, reminder=hours_reminder_text(report) if number == 6 else "")


@bp.get("/indicator/<int:number>/export.xlsx")
def indicator_export(number: int):
    """The drill-down as the page shows it (team filter, sort), for a coordinator's own follow-up."""
    if number not in ALL_DRILLDOWNS:
        abort(404)
    year = _year()
    report = compute_indicators(db.session, year, today=_today(), evidence_limit=100_000)
    args = _drill_args()
    table = drilldown(db.session, report, number, **args)
    return send_tables([drilldown_table(table, title=table.title)], "xlsx", f"indicator-{number}-{year}.xlsx",
                       audit=lambda rows: (f"programme:indicator-{number}",
                                           f"year={year}; team={args['team'] or ''}; rows={rows}"))


@bp.post("/indicator/6/remind")
def indicator_remind():
    """Indicator 6's "remind them": a notice to the volunteers under the hours target."""
    year = _year()
    team = (request.form.get("team") or "").strip() or None
    report = compute_indicators(db.session, year, today=_today(), evidence_limit=100_000)
    try:
        message_id, n = remind_below_target(db.session, report, team=team, nonce=request.form.get("nonce", ""),
                                            created_by_user_id=current_user().id, clock=clock())
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".indicator", number=6, year=year, team=team))
    flash(_("已向 %(n)d 名未达标的志愿者发送提醒", n=n), "success")
    return redirect(url_for("coord_notices.detail", message_id=message_id))


def _self_evaluation(year: int):
    report = compute_indicators(db.session, year, today=_today())
    return self_evaluation_workbook(report, evaluate(db.session, report))


def _export(kind: str, fmt: str):
    """The self-evaluation table is 20 laid-out rows, built here; the lists go through
    `send_or_queue`: streamed in this answer, or built in the background when large."""
    year = _year()
    if kind in PROGRAMME_KINDS:
        return send_or_queue(kind, {"year": year}, fmt)
    if kind != "self-evaluation":
        abort(404)
    wb = _self_evaluation(year)
    data = workbook_to_csv(wb) if fmt == "csv" else workbook_bytes(wb)
    record_action(db.session, actor(), "export", f"programme:{kind}", f"year={year}; format={fmt}")
    db.session.commit()
    return send_file(io.BytesIO(data), mimetype="text/csv" if fmt == "csv" else XLSX, download_name=f"{kind}-{year}.{fmt}")


@bp.get("/export/<kind>.xlsx")
def export(kind: str):
    return _export(kind, "xlsx")


@bp.get("/export/<kind>.csv")
def export_csv(kind: str):
    """The first sheet of the same export as CSV (UTF-8 with BOM), for tools that take no .xlsx."""
    return _export(kind, "csv")


@bp.route("/digest", methods=["GET", "POST"])
def digest():
    if request.method == "POST":
        result = send_digest(db.session, clock=clock())
        if result is None:
            flash(_("没有启用的平安办账号，周报没有发送"), "error")
        elif result.created:
            flash(_("周报：") + reach_text(message_reach(db.session, result.message_id)), "success")
        else:
            flash(_("本周周报已经发送过"), "success")
        return redirect(url_for(".digest"))
    title, body = digest_text(db.session, now=now(), indicators=lambda year, today: cached_indicators(
        year, today=today, evidence_limit=DRILL_EVIDENCE))
    return render_template("coord/programme/digest.html", title=title, body=body)


# --- ledgers -----------------------------------------------------------------------------------------

@bp.route("/insurance", methods=["GET", "POST"])
def insurance():
    year = _year()
    if request.method == "POST":
        try:
            create_policy(db.session, insurer=request.form.get("insurer", ""), policy_no=request.form.get("policy_no", ""),
                          cover_start=_date("cover_start"), cover_end=_date("cover_end"),
                          premium_per_person=money(request.form.get("premium_per_person"), _("保费")))
            flash(_("已登记保单"), "success")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        return _back(".insurance")
    policies = db.session.execute(select(InsurancePolicy, func.count(InsuranceCover.id))
                                  .outerjoin(InsuranceCover, InsuranceCover.policy_id == InsurancePolicy.id)
                                  .group_by(InsurancePolicy.id).order_by(InsurancePolicy.cover_start.desc())).all()
    return render_template("coord/programme/insurance.html", policies=policies, year=year, report=None)


@bp.post("/insurance/<int:policy_id>/import")
def insurance_import(policy_id: int):
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("请选择要导入的文件"), "error")
        return _back(".insurance")
    report = import_insured(db.session, policy_id, upload.read(), upload.filename, cipher=data_cipher(),
                            actor=actor(), can_see_id_numbers=current_user().is_admin,
                            id_import_daily_limit=current_app.config["ID_IMPORT_DAILY_LIMIT"])
    audit_import(report, upload.filename)
    if report.ok:
        flash(report.summary(), "success")
        return _back(".insurance")
    policies = db.session.execute(select(InsurancePolicy, func.count(InsuranceCover.id))
                                  .outerjoin(InsuranceCover, InsuranceCover.policy_id == InsurancePolicy.id)
                                  .group_by(InsurancePolicy.id)).all()
    return render_template("coord/programme/insurance.html", policies=policies, year=_year(), report=report), 400


@bp.route("/equipment", methods=["GET", "POST"])
def equipment():
    year = _year()
    report = None
    if request.method == "POST":
        try:
            if request.form.get("form") == "delivery":
                add_delivery(db.session, supplier=request.form.get("supplier", ""), delivered_on=_date("delivered_on"),
                             sets=_int("sets"), unit_cost=money(request.form.get("unit_cost"), _("单价")),
                             passed_sets=int(request.form["passed_sets"]) if request.form.get("passed_sets") else None,
                             note=request.form.get("note"))
                flash(_("已登记到货"), "success")
            else:
                upload = request.files.get("file")
                if upload is None or not upload.filename:
                    raise DomainError("required", _("请选择要导入的文件"))
                importer = import_deliveries if request.form.get("form") == "deliveries" else import_issues
                report = importer(db.session, upload.read(), upload.filename)
                audit_import(report, upload.filename)
                if report.ok:
                    flash(report.summary(), "success")
                    report = None
        except (DomainError, ValueError) as exc:
            db.session.rollback()
            flash(exc.message if isinstance(exc, DomainError) else _("请填写整数"), "error")
        if report is None:
            return _back(".equipment")
    deliveries = db.session.scalars(select(EquipmentDelivery).order_by(EquipmentDelivery.delivered_on.desc())).all()
    issued = db.session.scalar(select(func.count(func.distinct(EquipmentIssue.volunteer_id))).where(
        EquipmentIssue.issued_on.between(*year_dates(db.session, year)))) or 0
    return render_template("coord/programme/equipment.html", deliveries=deliveries, issued=issued, year=year,
                           report=report), 400 if report else 200


@bp.route("/budget", methods=["GET", "POST"])
def budget_page():
    year = _year()
    if request.method == "POST":
        try:
            if request.form.get("form") == "line":
                set_budget(db.session, year, request.form.get("code", ""), money(request.form.get("amount"), _("预算")))
            elif request.form.get("form") == "import":
                upload = request.files.get("file")
                if upload is None or not upload.filename:
                    raise DomainError("required", _("请选择要导入的文件"))
                report = import_expenditures(db.session, year, upload.read(), upload.filename, by=actor())
                audit_import(report, upload.filename)
                if not report.ok:
                    for line in [report.summary(), *report.lines()]:
                        flash(line, "error")
                    return _back(".budget_page")
                flash(report.summary(), "success")
                return _back(".budget_page")
            else:
                add_expenditure(db.session, year=year, line=request.form.get("line", ""), spent_on=_date("spent_on"),
                                amount=money(request.form.get("amount")), description=request.form.get("description", ""),
                                payee=request.form.get("payee"), voucher_no=request.form.get("voucher_no"), by=actor())
            flash(_("已保存"), "success")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        return _back(".budget_page")
    entries = db.session.scalars(select(Expenditure).where(Expenditure.year == year)
                                 .order_by(Expenditure.spent_on.desc())).all()
    from services.channels.costs import double_count_warnings

    return render_template("coord/programme/budget.html", lines=budget(db.session, year), entries=entries, year=year,
                           line_names=LINE_NAMES, codes=BUDGET_LINES,
                           double_counted=double_count_warnings(db.session, year))


@bp.route("/complaints", methods=["GET", "POST"])
def complaints():
    year = _year()
    if request.method == "POST":
        try:
            if request.form.get("form") == "import":
                upload = request.files.get("file")
                if upload is None or not upload.filename:
                    raise DomainError("required", _("请选择要导入的文件"))
                report = import_complaints(db.session, upload.read(), upload.filename, by=actor())
                audit_import(report, upload.filename)
                for line in ([report.summary()] if report.ok else [report.summary(), *report.lines()]):
                    flash(line, "success" if report.ok else "error")
                return _back(".complaints")
            if request.form.get("complaint_id"):
                close_complaint(db.session, id_value(request.form["complaint_id"], _("投诉")), finding=request.form.get("finding", ""),
                                resolution=request.form.get("resolution", ""))
            else:
                vol_id = None
                if request.form.get("volunteer"):
                    from services.review import find_volunteer
                    vol_id = find_volunteer(db.session, request.form["volunteer"]).id
                add_complaint(db.session, received_on=_date("received_on"), source=request.form.get("source", ""),
                              description=request.form.get("description", ""), volunteer_id=vol_id,
                              finding=request.form.get("finding") or None, resolution=request.form.get("resolution") or None,
                              by=actor())
            flash(_("已保存"), "success")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        return _back(".complaints")
    rows = db.session.execute(select(Complaint, Volunteer.name).outerjoin(Volunteer, Volunteer.id == Complaint.volunteer_id)
                              .order_by(Complaint.received_on.desc())).all()
    return render_template("coord/programme/complaints.html", rows=rows, year=year, today=_today())


@bp.route("/documents", methods=["GET", "POST"])
def documents():
    year = _year()
    if request.method == "POST":
        upload = request.files.get("file")
        try:
            add_document(db.session, year=year, kind=request.form.get("kind", "other"), title=request.form.get("title", ""),
                         filename=upload.filename if upload and upload.filename else None,
                         content_type=upload.mimetype if upload and upload.filename else None,
                         content=upload.read() if upload and upload.filename else None, by=actor())
            flash(_("已归档"), "success")
        except DomainError as exc:
            flash(exc.message, "error")
        return _back(".documents")
    docs = db.session.scalars(select(ProgrammeDocument).where(ProgrammeDocument.year == year)
                              .order_by(ProgrammeDocument.created_at.desc())).all()
    return render_template("coord/programme/documents.html", docs=docs, year=year)


@bp.get("/documents/<int:doc_id>")
def document_file(doc_id: int):
    doc = db.session.get(ProgrammeDocument, doc_id)
    if doc is None or doc.content is None:
        abort(404)
    # Never the uploader's text/html or script: a download, of an allow-listed type or octet-stream.
    resp = send_file(io.BytesIO(doc.content), mimetype=document_type(doc.content_type),
                     download_name=doc.filename or f"document-{doc.id}", as_attachment=True)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    year = _year()
    row = programme_year(db.session, year)
    if request.method == "POST":
        if not current_user().is_admin:
            abort(403)
        try:
            f = request.form
            if any(k.startswith("weight_") for k in f):  # validated first; saved with the rest or not at all
                set_weights(db.session, year, {key: f.get(f"weight_{key}", "") for key in default_weights()}, commit=False)
                set_qualitative_scores(db.session, year, {n: f.get(f"score_{n}", "") for n in QUALITATIVE}, commit=False)
            update_year(db.session, year,
                        target_volunteers=_int("target_volunteers"), target_hours=float(f.get("target_hours", "6")),
                        target_satisfaction=float(f.get("target_satisfaction", "90")) / 100,
                        target_work_fund=money(f.get("target_work_fund")),
                        target_insurance_per_person=money(f.get("target_insurance_per_person")),
                        target_equipment_per_person=money(f.get("target_equipment_per_person")),
                        target_equipment_sets=_int("target_equipment_sets"),
                        insurance_due=_date("insurance_due"), equipment_due=_date("equipment_due"),
                        survey_round_id=int(f["survey_round_id"]) if f.get("survey_round_id") else None,
                        hours_rule=f.get("hours_rule", "mean"),
                        assessment_safety=(f.get("assessment_safety") or "").strip() or None,
                        assessment_mechanism=(f.get("assessment_mechanism") or "").strip() or None,
                        assessed_by=actor())
            flash(_("年度设置已保存"), "success")
        except (DomainError, ValueError) as exc:
            db.session.rollback()
            flash(exc.message if isinstance(exc, DomainError) else _("请检查填写的数字"), "error")
        return _back(".settings")
    rounds = db.session.scalars(select(SurveyRound).order_by(SurveyRound.opens_at.desc())).all()
    first, last = year_dates(db.session, year)
    return render_template("coord/programme/settings.html", row=row, year=year, rounds=rounds,
                           year_start=year_start(db.session), year_first=first, year_last=last,
                           year_start_locked=holds_data(db.session), weights=weights_for(db.session, year),
                           qualitative=qualitative_scores_for(db.session, year), qualitative_numbers=QUALITATIVE)


@bp.post("/settings/year-start")
def settings_year_start():
    """The installation-wide programme-year start (admins; refused once any year holds data)."""
    if not current_user().is_admin:
        abort(403)
    try:
        new = set_year_start(db.session, request.form.get("year_start", ""), by=actor())
        flash(_("年度起始日已设为 %(d)s", d=str(new)), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for(".settings"))


