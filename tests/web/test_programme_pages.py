"""Ledgers, settings and digest pages over HTTP."""
from __future__ import annotations

import io
from datetime import date

from sqlalchemy import func, select

from extensions import db
from models import (Complaint, EquipmentDelivery, EquipmentIssue, Expenditure, InsuranceCover, InsurancePolicy,
                    ProgrammeDocument, ProgrammeYear, Volunteer)
from tests.conftest import Auth, csrf_from
from tests.factories import csv_bytes, id_number

Y = 2025


def _vols(app):
    with app.app_context():
        idn = id_number("31011219800101123")
        from keys import data_cipher
        from services.pii import mask_id_number
        c = data_cipher()
        v1 = Volunteer(name="丙一", phone="13922220001", joined_on=date(Y, 1, 1), id_number_enc=c.encrypt(idn),
                       id_number_hash=c.blind_index(idn), id_number_masked=mask_id_number(idn))
        v2 = Volunteer(name="丙二", phone="13922220002", vest_no="PJ-0202", joined_on=date(Y, 1, 1))
        db.session.add_all([v1, v2])
        db.session.commit()
        return idn


def test_insurance_policy_and_list_import_all_or_nothing(app, client, auth):
    idn = _vols(app)
    auth.login()
    token = csrf_from(client, f"/coord/programme/insurance?year={Y}")
    client.post(f"/coord/programme/insurance?year={Y}", data={"csrf_token": token, "insurer": "某保险", "policy_no": "PA-1",
                "cover_start": f"{Y}-01-01", "cover_end": f"{Y}-12-31", "premium_per_person": "9.80"})
    with app.app_context():
        pid = db.session.scalar(select(InsurancePolicy.id))
    bad = csv_bytes([["身份证号", "手机号"], [idn, None], [None, "13900009999"]])
    resp = client.post(f"/coord/programme/insurance/{pid}/import?year={Y}", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(bad), "list.csv")})
    assert resp.status_code == 400 and "第 3 行" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(InsuranceCover.id))) == 0
    # A coordinator (who cannot see full ID numbers) matches an ID number only with the name (issue 10).
    good = csv_bytes([["身份证号", "姓名", "手机号"], [idn, "丙一", None], [None, None, "13922220002"]])
    client.post(f"/coord/programme/insurance/{pid}/import?year={Y}", content_type="multipart/form-data",
                data={"csrf_token": token, "file": (io.BytesIO(good), "list.csv")})
    with app.app_context():
        assert db.session.scalar(select(func.count(InsuranceCover.id))) == 2
    page = client.get(f"/coord/programme/insurance?year={Y}").get_data(as_text=True)
    assert "PA-1" in page and idn not in page


def test_equipment_budget_complaints_documents(app, client, auth):
    _vols(app)
    auth.login()
    token = csrf_from(client, f"/coord/programme/equipment?year={Y}")
    client.post(f"/coord/programme/equipment?year={Y}", data={"csrf_token": token, "form": "delivery", "supplier": "厂",
                "delivered_on": f"{Y}-01-10", "sets": "2", "unit_cost": "58", "passed_sets": ""})
    client.post(f"/coord/programme/equipment?year={Y}", content_type="multipart/form-data",
                data={"csrf_token": token, "form": "issues",
                      "file": (io.BytesIO(csv_bytes([["手机号", "发放日期"], ["13922220001", f"{Y}-02-01"]])), "i.csv")})
    client.post(f"/coord/programme/budget?year={Y}", data={"csrf_token": token, "form": "expenditure", "line": "work_fund",
                "spent_on": f"{Y}-02-11", "amount": "1,200.50", "description": "夜宵"})
    bad = client.post(f"/coord/programme/budget?year={Y}", data={"csrf_token": token, "form": "expenditure",
                      "line": "work_fund", "spent_on": f"{Y - 1}-12-31", "amount": "10", "description": "x"},
                      follow_redirects=True)
    assert "不在" in bad.get_data(as_text=True)
    client.post(f"/coord/programme/complaints?year={Y}", data={"csrf_token": token, "received_on": f"{Y}-05-01",
                "source": "热线", "description": "态度", "volunteer": "PJ-0202"})
    client.post(f"/coord/programme/documents?year={Y}", content_type="multipart/form-data",
                data={"csrf_token": token, "kind": "rule", "title": "平安志愿者管理办法",
                      "file": (io.BytesIO(b"%PDF-1.4 rules"), "rules.pdf")})
    with app.app_context():
        assert db.session.scalar(select(EquipmentDelivery.passed_sets)) == 2
        assert db.session.scalar(select(func.count(EquipmentIssue.id))) == 1
        assert str(db.session.scalar(select(Expenditure.amount))) == "1200.50"
        assert db.session.scalar(select(Complaint.volunteer_id)) is not None
        doc_id = db.session.scalar(select(ProgrammeDocument.id))
    budget = client.get(f"/coord/programme/budget?year={Y}").get_data(as_text=True)
    assert "1,200.50" in budget and "8.0%" in budget  # of 15,000
    assert client.get(f"/coord/programme/documents/{doc_id}").data == b"%PDF-1.4 rules"
    complaint_page = client.get(f"/coord/programme/complaints?year={Y}").get_data(as_text=True)
    assert "丙二" in complaint_page and "办结" in complaint_page


def test_settings_only_admins_change_them(app, client, auth):
    auth.login()
    token = csrf_from(client, f"/coord/programme/settings?year={Y}")
    form = {"csrf_token": token, "target_volunteers": "480", "target_hours": "6", "target_satisfaction": "90",
            "target_work_fund": "15000", "target_insurance_per_person": "10", "target_equipment_per_person": "60",
            "target_equipment_sets": "480", "insurance_due": f"{Y}-03-31", "equipment_due": f"{Y}-04-30",
            "hours_rule": "every", "assessment_safety": "推进", "assessment_mechanism": ""}
    assert client.post(f"/coord/programme/settings?year={Y}", data=form).status_code == 403
    admin = app.test_client()
    Auth(app, admin).login("boss", role="admin")
    t2 = csrf_from(admin, f"/coord/programme/settings?year={Y}")
    admin.post(f"/coord/programme/settings?year={Y}", data={**form, "csrf_token": t2})
    with app.app_context():
        row = db.session.get(ProgrammeYear, Y)
        assert (row.target_volunteers, row.hours_rule, str(row.equipment_due), row.assessment_safety) == \
            (480, "every", f"{Y}-04-30", "推进")


def test_digest_page_shows_and_sends(app, client, auth):
    auth.login()
    page = client.get("/coord/programme/digest").get_data(as_text=True)
    assert "平安马甲周报" in page and "志愿者工作时长" in page
    token = csrf_from(client, "/coord/programme/digest")
    first = client.post("/coord/programme/digest", data={"csrf_token": token}, follow_redirects=True)
    assert "周报：已发送 1 人" in first.get_data(as_text=True)
    again = client.post("/coord/programme/digest", data={"csrf_token": token}, follow_redirects=True)
    assert "已经发送过" in again.get_data(as_text=True)


def test_expenditure_import_all_or_nothing(app, client, auth):
    auth.login()
    token = csrf_from(client, f"/coord/programme/budget?year={Y}")
    bad = csv_bytes([["日期", "科目", "金额", "事项"], [f"{Y}-03-01", "工作经费", "500", "饮料"],
                     [f"{Y}-03-02", "茶水费", "20", "茶叶"]])
    resp = client.post(f"/coord/programme/budget?year={Y}", content_type="multipart/form-data", follow_redirects=True,
                       data={"csrf_token": token, "form": "import", "file": (io.BytesIO(bad), "e.csv")})
    assert "第 3 行" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Expenditure.id))) == 0
    good = csv_bytes([["日期", "科目", "金额", "事项"], [f"{Y}-03-01", "工作经费", "500", "饮料"],
                      [f"{Y}-03-02", "装备", "1,000.00", "补做马甲"]], "gb18030")
    for _ in range(2):
        client.post(f"/coord/programme/budget?year={Y}", content_type="multipart/form-data",
                    data={"csrf_token": token, "form": "import", "file": (io.BytesIO(good), "e.csv")})
    with app.app_context():
        assert db.session.scalar(select(func.count(Expenditure.id))) == 2


def test_delivery_and_complaint_imports_all_or_nothing(app, client, auth):
    _vols(app)
    auth.login()
    token = csrf_from(client, f"/coord/programme/equipment?year={Y}")
    bad = csv_bytes([["供应商", "到货日期", "套数", "单价", "验收合格"], ["厂", f"{Y}-01-10", "300", "58", "300"],
                     ["厂", f"{Y}-01-20", "200", "58", "250"]])
    resp = client.post(f"/coord/programme/equipment?year={Y}", content_type="multipart/form-data",
                       data={"csrf_token": token, "form": "deliveries", "file": (io.BytesIO(bad), "d.csv")})
    assert resp.status_code == 400 and "第 3 行" in resp.get_data(as_text=True)
    good = csv_bytes([["供应商", "到货日期", "套数", "单价"], ["厂", f"{Y}-01-10", "300", "58"],
                      ["厂", f"{Y}-01-20", "200", "58.5"]])
    for _ in range(2):
        client.post(f"/coord/programme/equipment?year={Y}", content_type="multipart/form-data",
                    data={"csrf_token": token, "form": "deliveries", "file": (io.BytesIO(good), "d.csv")})
    with app.app_context():
        assert db.session.scalar(select(func.sum(EquipmentDelivery.sets))) == 500
        assert db.session.scalar(select(func.sum(EquipmentDelivery.passed_sets))) == 500

    bad = csv_bytes([["收到日期", "来源", "内容", "涉及志愿者"], [f"{Y}-05-01", "热线", "态度", "PJ-0202"],
                     [f"{Y}-05-02", "来访", "噪音", "PJ-9999"]])
    resp = client.post(f"/coord/programme/complaints?year={Y}", content_type="multipart/form-data", follow_redirects=True,
                       data={"csrf_token": token, "form": "import", "file": (io.BytesIO(bad), "c.csv")})
    assert "第 3 行" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Complaint.id))) == 0
    good = csv_bytes([["收到日期", "来源", "内容", "涉及志愿者", "处理结果"], [f"{Y}-05-01", "热线", "态度", "PJ-0202", "已致歉"]])
    client.post(f"/coord/programme/complaints?year={Y}", content_type="multipart/form-data",
                data={"csrf_token": token, "form": "import", "file": (io.BytesIO(good), "c.csv")})
    with app.app_context():
        row = db.session.scalar(select(Complaint))
        assert (row.status, row.resolution) == ("closed", "已致歉") and row.volunteer_id is not None


def test_the_insurance_page_says_whether_the_gate_checks_anything_yet(app, client, auth):
    """Issue 9, item 12: before any policy is on file the gate checks nothing, and the page says so."""
    auth.login()
    page = client.get("/coord/programme/insurance").get_data(as_text=True)
    assert "还没有登记任何保单，签到时暂不核验保险" in page
    with app.app_context():
        db.session.add(InsurancePolicy(insurer="保险公司", policy_no="P-1", cover_start=date(Y, 1, 1),
                                       cover_end=date(Y, 1, 31), premium_per_person=10))
        db.session.commit()
    page = client.get("/coord/programme/insurance").get_data(as_text=True)
    assert "签到时的保险核验已生效" in page and "还没有登记任何保单" not in page


def test_an_uploaded_html_or_script_document_is_served_as_a_download_never_as_a_page(app, client, auth):
    """Review item 15: the uploader's MIME type used to be served as is (text/html ran as a page)."""
    from models import ProgrammeDocument

    auth.login()
    token = csrf_from(client, "/coord/")
    uploads = [("evil.html", "text/html", b"<script>alert(1)</script>"),
               ("evil.js", "application/javascript", b"alert(1)"),
               ("evil.svg", "image/svg+xml", b"<svg onload=alert(1)>"),
               ("ok.pdf", "application/pdf", b"%PDF-1.4"),
               ("ok.png", "image/png; charset=x", b"\x89PNG"),
               ("ok.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04")]
    for name, mime, body in uploads:
        client.post(f"/coord/programme/documents?year={Y}", content_type="multipart/form-data",
                    data={"csrf_token": token, "kind": "other", "title": name,
                          "file": (io.BytesIO(body), name, mime)})
    with app.app_context():
        # Also a row stored before the rule, with the uploader's type.
        db.session.add(ProgrammeDocument(year=Y, kind="other", title="old", filename="old.html",
                                         content_type="text/html", content=b"<b>x</b>"))
        db.session.commit()
        docs = {d.title: d.id for d in db.session.scalars(select(ProgrammeDocument))}
    served = {}
    for title, doc_id in docs.items():
        resp = client.get(f"/coord/programme/documents/{doc_id}")
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        served[title] = resp.mimetype
    assert served == {"evil.html": "application/octet-stream", "evil.js": "application/octet-stream",
                      "evil.svg": "application/octet-stream", "ok.pdf": "application/pdf", "ok.png": "image/png",
                      "ok.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      "old": "application/octet-stream"}


def test_the_hours_reminder_shows_what_it_sends_and_asks_first(app, client, auth):
    """"Remind these people" is a notice to many: the page shows its text and the button asks."""
    from datetime import date

    from models import Volunteer

    with app.app_context():
        db.session.add_all([Volunteer(name=f"丁{i}", phone=f"1350000000{i}", joined_on=date(2026, 1, 1))
                            for i in range(2)])
        db.session.commit()
    auth.login()
    page = client.get("/coord/programme/indicator/6").get_data(as_text=True)
    assert "提醒这 2 人" in page and "data-confirm=\"给这 2 人发送以下通知：本年度志愿服务时长目标为每人" in page
    assert "<q class=\"small\">本年度志愿服务时长目标为每人" in page
