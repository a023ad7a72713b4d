"""Long strings (issue 10 item 17): text longer than its column is a 4xx with a clear message.

SQLite does not enforce VARCHAR lengths, PostgreSQL does: run this file with TEST_DATABASE_URL
pointing at PostgreSQL to see the old 500s. On either database nothing may be stored.
"""
from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import func, select

from extensions import db
from models import (Complaint, EquipmentDelivery, Event, Expenditure, InsurancePolicy, PatrolPoint, ProgrammeDocument,
                    Shift, User, Volunteer)
from models.messaging import Message, SurveyRound
from services.errors import DomainError
from services.lengths import check_object
from services.programme import add_document
from tests.conftest import csrf_from

Y = 2025
LONG = "长" * 300


def _setup(app):
    with app.app_context():
        db.session.add(Volunteer(name="甲", phone="13955550001", team="塘口居委", joined_on=date(Y, 1, 1)))
        db.session.add(PatrolPoint(code="P1", name="一号点", lat=31.1, lon=121.5))
        db.session.add(Event(name="春节", starts_on=date(Y, 2, 1), ends_on=date(Y, 2, 3)))
        db.session.commit()
        return db.session.scalar(select(Event.id))


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


CASES = [
    ("document title", f"/coord/programme/documents?year={Y}", {"kind": "rule", "title": LONG}, ProgrammeDocument),
    ("document file name", f"/coord/programme/documents?year={Y}",
     {"kind": "rule", "title": "制度", "file": (io.BytesIO(b"%PDF-1.4"), "x" * 300 + ".pdf", "application/pdf")},
     ProgrammeDocument),
    ("insurer", f"/coord/programme/insurance?year={Y}", {"insurer": LONG, "policy_no": "P-1", "cover_start": f"{Y}-01-01",
                                                         "cover_end": f"{Y}-12-31", "premium_per_person": "10"},
     InsurancePolicy),
    ("policy number", f"/coord/programme/insurance?year={Y}", {"insurer": "某保险", "policy_no": "9" * 100,
                                                               "cover_start": f"{Y}-01-01", "cover_end": f"{Y}-12-31",
                                                               "premium_per_person": "10"}, InsurancePolicy),
    ("expenditure", f"/coord/programme/budget?year={Y}", {"line": "work_fund", "spent_on": f"{Y}-03-01", "amount": "10",
                                                          "description": LONG}, Expenditure),
    ("payee", f"/coord/programme/budget?year={Y}", {"line": "work_fund", "spent_on": f"{Y}-03-01", "amount": "10",
                                                    "description": "茶水", "payee": LONG, "voucher_no": "9" * 100},
     Expenditure),
    ("supplier", f"/coord/programme/equipment?year={Y}", {"form": "delivery", "supplier": LONG, "delivered_on": f"{Y}-01-10",
                                                          "sets": "2", "unit_cost": "58", "passed_sets": ""},
     EquipmentDelivery),
    ("inspection note", f"/coord/programme/equipment?year={Y}", {"form": "delivery", "supplier": "厂",
                                                                 "delivered_on": f"{Y}-01-10", "sets": "2",
                                                                 "unit_cost": "58", "passed_sets": "", "note": LONG},
     EquipmentDelivery),
    ("complaint source", f"/coord/programme/complaints?year={Y}", {"received_on": f"{Y}-03-01", "source": LONG,
                                                                   "description": "噪音"}, Complaint),
    ("point name", "/coord/points/new", {"code": "P2", "name": LONG, "radius_m": "150", "active": "1"}, PatrolPoint),
    ("point address", "/coord/points/new", {"code": "P3", "name": "三号点", "address": LONG, "radius_m": "150",
                                            "active": "1"}, PatrolPoint),
    ("event name", "/coord/events/", {"name": LONG, "starts_on": f"{Y}-05-01", "ends_on": f"{Y}-05-02"}, Event),
    ("shift note", "/coord/events/{event}/shifts", {"point_code": "P1", "starts_at": f"{Y}-02-01T18:00",
                                                    "ends_at": f"{Y}-02-01T22:00", "capacity": "5", "note": LONG}, Shift),
    ("notice title", "/coord/notices/send", {"text": "今晚巡逻", "audience": "all", "nonce": "n-1", "title": LONG}, Message),
    ("notice nonce", "/coord/notices/send", {"text": "今晚巡逻", "audience": "all", "nonce": "n" * 300}, Message),
    ("survey round name", "/coord/notices/surveys", {"name": LONG}, SurveyRound),
    ("account display name", "/coord/admin/accounts", {"username": "someone", "password": "password-123",
                                                       "role": "coordinator", "display_name": LONG}, User),
]


@pytest.mark.parametrize("label,url,form,model", CASES, ids=[c[0] for c in CASES])
def test_too_long_text_is_refused_with_a_clear_4xx(app, client, auth, label, url, form, model):
    event_id = _setup(app)
    auth.login("admin", role="admin")
    before = _count(app, model)
    token = csrf_from(client, "/coord/programme/documents")
    url = url.replace("{event}", str(event_id))
    resp = client.post(url, data={"csrf_token": token, **form}, content_type="multipart/form-data",
                       follow_redirects=True)
    body = resp.get_data(as_text=True)
    assert resp.status_code < 500, (label, resp.status_code)
    assert "过长" in body or "表单标识" in body, (label, body[:2000])
    assert _count(app, model) == before, label


def test_programme_imports_report_too_long_cells_by_row(app, client, auth):
    from services.programme import import_expenditures
    from tests.factories import csv_bytes
    with app.app_context():
        data = csv_bytes([["日期", "科目", "金额", "事项"], [f"{Y}-03-01", "工作经费", "10", LONG]])
        report = import_expenditures(db.session, Y, data, "e.csv")
        assert [(e.row, e.code) for e in report.errors] == [(2, "too_long")]


def test_the_service_raises_a_domain_error_and_the_flush_guard_catches_what_a_service_missed(app):
    with app.app_context():
        with pytest.raises(DomainError) as exc:
            add_document(db.session, year=Y, kind="rule", title="制度", filename="x" * 300, content_type="application/pdf",
                         content=b"x", by="t")
        assert exc.value.code == "too_long"
        # A MIME type is no longer stored as typed (review item 15): a long one is just not allowed.
        doc = add_document(db.session, year=Y, kind="rule", title="制度", filename="a.pdf", content_type="x" * 200,
                           content=b"x", by="t")
        assert doc.content_type == "application/octet-stream"
        db.session.rollback()
        db.session.add(ProgrammeDocument(year=Y, kind="rule", title=LONG))
        with pytest.raises(DomainError) as exc:
            db.session.flush()
        assert exc.value.code == "too_long" and "标题" in exc.value.message
        db.session.rollback()
        check_object(ProgrammeDocument(year=Y, kind="rule", title="短"))


def test_the_scan_api_takes_a_long_nonce_and_a_long_user_agent_without_a_500(app, client, auth):
    from keys import code_signer
    from models.attendance import ScanRecord
    from services.qr import point_token

    _setup(app)
    auth.volunteer()
    with app.app_context():
        token = point_token(code_signer(), db.session.scalar(select(PatrolPoint)))
    resp = client.post("/api/v1/scans", json={"token": token, "nonce": "n" * 1000},
                       headers={"User-Agent": "UA" * 2000})
    assert resp.status_code < 500
    with app.app_context():
        assert all(len(n or "") <= 64 for n in db.session.scalars(select(ScanRecord.nonce)))
