"""Board, attendance list, review, adjustments and paper sheets over HTTP; the team-leader role."""
from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Attendance, Event, HourAdjustment, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from tests.conftest import csrf_from
from tests.live import MovableClock


@pytest.fixture
def night(app, session):
    clk = MovableClock(from_local(datetime(2027, 2, 5, 18, 10)))
    app.config["CLOCK"] = clk
    event = Event(name="除夕", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 5))
    point = PatrolPoint(code="P1", name="一号点", radius_m=100)
    vol = Volunteer(name="钱七", phone="13900000007", vest_no="PJ-0007", team="塘口居委", joined_on=date(2026, 1, 1))
    session.add_all([event, point, vol])
    session.flush()
    shift = Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                  ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=5)
    session.add(shift)
    session.commit()
    yield {"clock": clk, "point_id": point.id, "vol_id": vol.id, "shift_id": shift.id}
    app.config.pop("CLOCK", None)


def test_board_proxy_check_in_and_out(client, auth, night, app):
    auth.login()
    token = csrf_from(client, "/coord/board/")
    resp = client.post("/coord/board/check-in", data={"csrf_token": token, "volunteer": "PJ-0007",
                                                      "point_id": night["point_id"]}, follow_redirects=True)
    assert "已为 钱七 代签到" in resp.get_data(as_text=True)
    rows = client.get("/coord/board/rows").get_data(as_text=True)
    assert "钱七" in rows and "代签" in rows
    night["clock"].advance(hours=2)
    with app.app_context():
        att_id = db.session.scalar(select(Attendance.id))
    resp = client.post(f"/coord/board/{att_id}/check-out", data={"csrf_token": token}, follow_redirects=True)
    assert "代签退需要填写原因" in resp.get_data(as_text=True)  # a proxy check-out states why
    assert "钱七" in client.get("/coord/board/rows").get_data(as_text=True)
    resp = client.post(f"/coord/board/{att_id}/check-out", data={"csrf_token": token, "reason": "手机没电"},
                       follow_redirects=True)
    assert "本次计 2.0 小时" in resp.get_data(as_text=True)  # 18:10–20:10
    assert "现在没有人在岗" in client.get("/coord/board/rows").get_data(as_text=True)
    unknown = client.post("/coord/board/check-in", data={"csrf_token": token, "volunteer": "nobody",
                                                         "point_id": night["point_id"]}, follow_redirects=True)
    assert "找不到" in unknown.get_data(as_text=True)


def test_team_leader_gets_the_board_and_nothing_else(client, auth, night, app):
    auth.login("leader1", role="leader")
    assert client.get("/coord/board/").status_code == 200
    assert client.get("/coord/").headers["Location"].endswith("/coord/board/")
    for path in ("/coord/volunteers/", "/coord/points/", "/coord/events/", "/coord/attendance/", "/coord/admin/"):
        assert client.get(path).status_code == 403, path
    token = csrf_from(client, "/coord/board/")
    resp = client.post("/coord/board/check-in", data={"csrf_token": token, "volunteer": "13900000007",
                                                      "point_id": night["point_id"]})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Attendance.source)) == "proxy"


def test_attendance_list_review_and_adjust(client, auth, night, app):
    phone = app.test_client()
    from services.signin import confirm_login_link, issue_login_link
    with app.app_context():
        link = issue_login_link(db.session, night["vol_id"], base_url="http://x", created_by="t")
        secret = confirm_login_link(db.session, link.url.rsplit("/", 1)[1]).device_secret
    phone.set_cookie("pv_device", secret)
    from keys import code_signer
    from services.qr import point_token
    with app.test_request_context():
        token = point_token(code_signer(), db.session.get(PatrolPoint, night["point_id"]))
    phone.post("/api/v1/scans", json={"token": token})
    night["clock"].advance(hours=1)
    assert phone.post("/api/v1/scans", json={"token": token, "confirm": True}).get_json()["action"] == "check_out"

    auth.login()
    assert "钱七" in client.get("/coord/attendance/").get_data(as_text=True)
    # the point has no geofence: nothing was flagged
    assert "钱七" not in client.get("/coord/attendance/?review=flagged").get_data(as_text=True)
    with app.app_context():
        att = db.session.scalar(select(Attendance))
        att.review_status, att.flags = "flagged", "outside_geofence"
        db.session.commit()
        att_id = att.id
    listing = client.get("/coord/attendance/?review=flagged").get_data(as_text=True)
    assert "不在范围" in listing and "通过" in listing
    token = csrf_from(client, "/coord/attendance/")
    queue = client.get("/coord/attendance/review").get_data(as_text=True)
    assert 'name="reason" maxlength="200" list="reasons" required' in queue and "formnovalidate" in queue
    # Refused (no reason): back at that record, not at the top of a long queue.
    back = "/coord/attendance/review?flag="
    refused = client.post(f"/coord/attendance/{att_id}/review", data={"csrf_token": token, "decision": "rejected",
                                                                       "back": back, "next_id": "999"})
    assert refused.headers["Location"].endswith(f"#att-{att_id}")
    done = client.post(f"/coord/attendance/{att_id}/review", data={"csrf_token": token, "decision": "rejected",
                                                                    "reason": "不在岗", "name": "钱七", "back": back,
                                                                    "next_id": "999"})
    assert done.headers["Location"].endswith(back + "#att-999")  # on to the record that was next
    assert "已不通过：钱七" in client.get(done.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Attendance, att_id).review_status == "rejected"
    no_reason = client.post(f"/coord/attendance/volunteer/{night['vol_id']}/adjust",
                            data={"csrf_token": token, "hours": "1.5", "work_date": "2027-02-05", "reason": ""},
                            follow_redirects=True)
    assert "请填写调整原因" in no_reason.get_data(as_text=True)
    client.post(f"/coord/attendance/volunteer/{night['vol_id']}/adjust",
                data={"csrf_token": token, "hours": "1.5", "work_date": "2027-02-05", "reason": "手机没电，现场核实"})
    with app.app_context():
        adj = db.session.scalar(select(HourAdjustment))
        assert (adj.minutes, adj.reason) == (90, "手机没电，现场核实") and adj.created_by_user_id is not None
    detail = client.get(f"/coord/volunteers/{night['vol_id']}").get_data(as_text=True)
    assert "手机没电，现场核实" in detail and "人工登记" in detail


def test_sheet_downloads_and_attendance_import_page(client, auth, night, app):
    auth.login()
    pdf = client.get(f"/coord/events/shifts/{night['shift_id']}/sheet.pdf")
    assert pdf.status_code == 200 and pdf.data[:4] == b"%PDF"
    xlsx = client.get(f"/coord/events/shifts/{night['shift_id']}/sheet.xlsx")
    assert xlsx.data[:2] == b"PK"
    from tests.factories import csv_bytes
    data = csv_bytes([["手机号", "点位编号", "签到时间", "签退时间"], ["13900000007", "P1", "2027-02-05 18:00", "2027-02-05 19:00"]])
    token = csrf_from(client, "/coord/attendance/import")
    resp = client.post("/coord/attendance/import", data={"csrf_token": token, "file": (io.BytesIO(data), "p.csv")},
                       content_type="multipart/form-data")
    assert "导入成功" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Attendance.id)).where(Attendance.source == "import")) == 1


def test_cli_sheet_and_import(runner, night, tmp_path, app):
    out = tmp_path / "s.xlsx"
    result = runner.invoke(args=["attendance", "sheet", str(night["shift_id"]), "-o", str(out)])
    assert result.exit_code == 0 and out.read_bytes()[:2] == b"PK"
    src = tmp_path / "a.csv"
    from tests.factories import csv_bytes
    src.write_bytes(csv_bytes([["phone", "event", "check_in", "check_out"], ["13900000007", "除夕", "2027-02-05 09:00", "2027-02-05 08:00"]]))
    bad = runner.invoke(args=["import", "attendance", str(src)])
    assert bad.exit_code == 1 and "第 2 行" in bad.output


def test_import_page_reports_a_rejected_row_and_review_reapplies_the_cap(client, auth, night, app):
    auth.login()
    from tests.factories import csv_bytes
    data = csv_bytes([["手机号", "点位编号", "签到时间", "签退时间"], ["13900000007", "P1", "2027-02-05 18:00", "2027-02-05 19:00"]])

    def upload():
        token = csrf_from(client, "/coord/attendance/import")
        return client.post("/coord/attendance/import", data={"csrf_token": token, "file": (io.BytesIO(data), "p.csv")},
                           content_type="multipart/form-data").get_data(as_text=True)

    assert "导入成功" in upload()
    with app.app_context():
        att_id = db.session.scalar(select(Attendance.id))
    token = csrf_from(client, "/coord/attendance/")
    client.post(f"/coord/attendance/{att_id}/review", data={"csrf_token": token, "decision": "rejected", "reason": "不在岗"})
    with app.app_context():
        att = db.session.get(Attendance, att_id)
        assert (att.review_status, att.credited_minutes) == ("rejected", 0)
    page = upload()
    assert "未变 1" in page and "已审核：不通过" in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Attendance.id))) == 1
    client.post(f"/coord/attendance/{att_id}/review", data={"csrf_token": token, "decision": "approved"})
    with app.app_context():
        assert db.session.get(Attendance, att_id).credited_minutes == 60


def test_offline_scans_over_the_api_with_the_phones_time_and_the_refused_list(client, auth, night, app):
    """POST /api/v1/scans with client_time: late within the bound counts at the phone's time,
    flagged; older is refused (422) and listed for coordinators under 未计入的离线扫码."""
    phone = app.test_client()
    from services.signin import confirm_login_link, issue_login_link
    with app.app_context():
        link = issue_login_link(db.session, night["vol_id"], base_url="http://x", created_by="t")
        secret = confirm_login_link(db.session, link.url.rsplit("/", 1)[1]).device_secret
    phone.set_cookie("pv_device", secret)
    from keys import code_signer
    from services.qr import point_token
    with app.test_request_context():
        token = point_token(code_signer(), db.session.get(PatrolPoint, night["point_id"]))
    scanned = night["clock"].now
    night["clock"].advance(minutes=40)
    body = phone.post("/api/v1/scans", json={"token": token, "nonce": "q1", "confirm": True,
                                             "client_time": scanned.isoformat()}).get_json()
    assert body["action"] == "check_in" and "offline_late" in body["flags"]
    assert body["scanned_at"] == scanned.isoformat()
    night["clock"].advance(hours=2)
    old = phone.post("/api/v1/scans", json={"token": token, "nonce": "q2", "confirm": True,
                                            "client_time": (night["clock"].now.replace(microsecond=0)
                                                            .isoformat().replace("+00:00", "Z"))})
    assert old.status_code == 200 and old.get_json()["action"] == "check_out"  # on time: the server's time
    too_old = phone.post("/api/v1/scans", json={"token": token, "nonce": "q3", "confirm": True,
                                                "client_time": scanned.isoformat()})
    assert too_old.status_code == 422 and too_old.get_json()["error"]["code"] == "offline_too_old"
    naive = phone.post("/api/v1/scans", json={"token": token, "client_time": "2027-02-05T18:00:00"})
    assert naive.status_code == 422 and naive.get_json()["error"]["code"] != "offline_too_old"

    auth.login()
    page = client.get("/coord/attendance/").get_data(as_text=True)
    assert "未计入的离线扫码" in page and "超过离线提交期限" in page and "离线补交" in page
