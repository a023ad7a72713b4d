"""A small programme with known numbers: every one of the 14 indicators, in the service, the JSON
API, the CLI and the exported self-evaluation table."""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from models import Attendance, PatrolPoint, SurveyRound, Volunteer
from services.clock import from_local
from services.imports import import_attendance
from services.indicators import compute_indicators
from services.programme import (add_complaint, add_delivery, add_expenditure, create_policy, import_insured,
                                issue_equipment, update_year)
from services.review import add_adjustment
from services.surveys import answer
from tests.factories import csv_bytes

Y = 2025
TODAY = date(2026, 1, 10)  # the year is over: final statuses


@pytest.fixture
def programme(session, cipher):
    vols = {}
    for key, phone in (("A", "13911110001"), ("B", "13911110002"), ("C", "13911110003"), ("D", "13911110004"),
                       ("E", "13911110005")):
        v = Volunteer(name=f"志愿者{key}", phone=phone, team="塘口居委", joined_on=date(Y, 1, 1))
        session.add(v)
        vols[key] = v
    vols["E"].status, vols["E"].withdrawn_on = "withdrawn", date(Y, 6, 30)
    p = PatrolPoint(code="P1", name="一号点", radius_m=100)
    session.add(p)
    session.flush()
    from models import Event, Shift
    ev = Event(name="春节", starts_on=date(Y, 2, 10), ends_on=date(Y, 2, 10))
    session.add(ev)
    session.flush()
    session.add(Shift(event_id=ev.id, point_id=p.id, starts_at=from_local(datetime(Y, 2, 10, 18)),
                      ends_at=from_local(datetime(Y, 2, 10, 22)), capacity=10))
    session.commit()
    update_year(session, Y, target_volunteers=4, target_equipment_sets=5)

    rows = [["手机号", "点位编号", "活动", "签到时间", "签退时间"],
            ["13911110001", "P1", None, f"{Y}-02-10 18:00", f"{Y}-02-10 22:00"],
            ["13911110001", None, "国庆", f"{Y}-10-01 09:00", f"{Y}-10-01 13:00"],
            ["13911110002", "P1", None, f"{Y}-02-10 18:00", f"{Y}-02-10 20:00"],
            ["13911110003", "P1", None, f"{Y}-02-10 17:30", f"{Y}-02-10 22:30"],
            ["13911110003", None, "国庆", f"{Y}-10-01 09:00", f"{Y}-10-01 11:00"],
            ["13911110005", "P1", None, f"{Y}-02-10 18:00", f"{Y}-02-10 22:00"]]
    assert import_attendance(session, csv_bytes(rows), "history.csv").ok
    october = session.scalar(select(Attendance.id).where(Attendance.volunteer_id == vols["A"].id)
                             .order_by(Attendance.check_in_at.desc()))
    session.execute(update(Attendance).where(Attendance.id == october).values(review_status="flagged", flags="no_location"))
    session.commit()
    add_adjustment(session, vols["B"].id, minutes=120, work_date=date(Y, 3, 1), reason="停电当晚纸质记录补录",
                   by_user_id=None)

    policy = create_policy(session, insurer="某保险公司", policy_no="PA-2025-001", cover_start=date(Y, 1, 1),
                           cover_end=date(Y, 12, 31), premium_per_person=Decimal("9.50"))
    assert import_insured(session, policy.id, csv_bytes([["手机号"], ["13911110001"], ["13911110002"], ["13911110003"]]),
                          "insured.csv", cipher=cipher).ok
    add_delivery(session, supplier="某服装厂", delivered_on=date(Y, 1, 20), sets=5, unit_cost=Decimal("55"), passed_sets=4)
    for key, day in (("A", date(Y, 2, 1)), ("B", date(Y, 2, 1)), ("C", date(Y, 2, 15)), ("D", date(Y, 4, 10))):
        issue_equipment(session, vols[key].id, day)
    add_expenditure(session, year=Y, line="work_fund", spent_on=date(Y, 2, 11), amount=Decimal("9000"), description="餐饮")
    add_expenditure(session, year=Y, line="work_fund", spent_on=date(Y, 10, 2), amount=Decimal("3000.50"), description="交通")
    add_complaint(session, received_on=date(Y, 5, 5), source="12345 热线", description="劝阻时态度生硬",
                  volunteer_id=vols["B"].id)
    r = SurveyRound(name="年中", question="满意吗？", opens_at=from_local(datetime(Y, 6, 1)),
                    closes_at=from_local(datetime(Y, 12, 31)))
    session.add(r)
    session.commit()
    from services.clock import fixed_clock
    for key, score in (("A", 5), ("B", 4), ("C", 4), ("D", 2)):
        answer(session, r.id, vols[key].id, score, clock=fixed_clock(from_local(datetime(Y, 6, 5))))
    update_year(session, Y, assessment_safety="春节、国庆重点时段巡逻全覆盖，推进")
    return vols


EXPECTED = {  # number: (value, status)
    1: (12000.5, "green"),
    2: (9.5, "green"),
    3: (68.75, "red"),
    4: (4, "green"),
    5: (5, "green"),
    6: (4.5, "red"),
    7: (round(4 / 6, 4), "red"),  # C's 国庆 row has no shift that day: imported as unscheduled, flagged
    8: (0.8, "red"),
    9: (0.5, "red"),
    10: (0.75, "red"),
    11: (1, "red"),
    12: (None, "green"),
    13: (None, "amber"),
    14: (0.75, "red"),
}


def _check(rows):
    got = {r["number"]: (r["value"], r["status"]) for r in rows}
    assert got == EXPECTED


def test_all_fourteen_indicators_from_known_numbers(session, programme):
    report = compute_indicators(session, Y, today=TODAY)
    _check([{"number": r.number, "value": r.value, "status": r.status} for r in report.rows])
    six = report.row(6)
    assert six.evidence["share_at_target"] == 0.5 and six.evidence["below_count"] == 2
    assert sorted(b["name"] for b in six.evidence["below"]) == ["志愿者B", "志愿者D"]
    assert report.row(2).actual == "9.50 元/人（最高 9.50 元）"
    assert report.row(14).evidence["responses"] == 4 and report.row(14).evidence["response_rate"] == 0.8
    assert report.row(10).evidence["late_count"] == 1 and report.row(9).evidence["late_count"] == 2
    assert report.row(12).evidence["points_covered"] == 1
    assert report.hours_by_month[2] == 14.0  # 4 + 2 + 4 (A, B, C; shift 18–22 caps C's 17:30–22:30) + E's 4


def test_year_to_date_uses_amber_for_on_track(session, programme):
    report = compute_indicators(session, Y, today=date(Y, 2, 12))
    assert report.year_to_date and report.row(6).status in ("amber", "red")
    assert report.row(14).status == "amber"  # no survey yet by then


def test_the_same_numbers_in_the_api_the_cli_and_the_xlsx(app, session, programme, client, auth, runner, tmp_path):
    auth.login()
    api = client.get(f"/api/v1/indicators?year={Y}")
    assert api.status_code == 200
    _check(api.get_json()["indicators"])
    anon = app.test_client().get(f"/api/v1/indicators?year={Y}")
    assert anon.status_code == 401

    result = runner.invoke(args=["indicators", "--year", str(Y), "--json"])
    assert result.exit_code == 0, result.output
    _check(json.loads(result.output)["indicators"])

    out = tmp_path / "self.xlsx"
    assert runner.invoke(args=["report", "self-evaluation", "--year", str(Y), "-o", str(out)]).exit_code == 0
    ws = load_workbook(BytesIO(out.read_bytes())).active
    table = {row[0]: row for row in ws.iter_rows(min_row=4, values_only=True) if isinstance(row[0], int)}
    assert len(table) == 14
    assert table[6][1:6] == ("产出指标", "数量指标", "志愿者工作时长", "≥6 小时", "人均 4.5 小时；达标 50.0%（2/4）")
    assert table[6][6] == "未达成" and "2 名志愿者未达到目标时长" in table[6][7]
    assert table[1][5] == "12,000.50 元" and table[1][6] == "已达成"
    assert table[14][5].startswith("75.0%")
    statuses = {n: row[6] for n, row in table.items()}
    words = {"green": "已达成", "amber": "进行中（按进度达标）", "red": "未达成"}
    assert statuses == {n: words[s] for n, (_v, s) in EXPECTED.items()}


def test_dashboard_and_drill_down_pages(client, auth, programme):
    auth.login()
    page = client.get(f"/coord/programme/?year={Y}").get_data(as_text=True)
    assert "志愿者工作时长" in page and "<svg" in page and "status-red" in page
    drill = client.get(f"/coord/programme/indicator/6?year={Y}").get_data(as_text=True)
    assert "志愿者B" in drill and "志愿者D" in drill and "志愿者A" not in drill.split("依据")[0]
    xlsx = client.get(f"/coord/programme/export/hours.xlsx?year={Y}")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    ws = load_workbook(BytesIO(xlsx.data)).active
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["志愿者B"][3:7] == (2.0, 0, 2.0, 4.0) or rows["志愿者B"][3:7] == (0.0, 2.0, 2.0, 4.0)


# --- issue 9: insurance rules (items 9–11), with their own small programme ----------------------------

def _vol(session, n: int, joined: date = date(2026, 1, 1)) -> Volunteer:
    v = Volunteer(name=f"队员{n}", phone=f"1370000000{n}", joined_on=joined)
    session.add(v)
    session.commit()
    return v


def _cover(session, policy, *vols) -> None:
    from models import InsuranceCover
    session.add_all([InsuranceCover(policy_id=policy.id, volunteer_id=v.id) for v in vols])
    session.commit()


def _patrol(session, vol, day: date, *, minutes: int = 120, review: str = "none", flags: str = "") -> Attendance:
    from models import AttendanceCredit
    start = from_local(datetime(day.year, day.month, day.day, 18))
    att = Attendance(volunteer_id=vol.id, source="scan", status="closed", check_in_at=start, check_out_at=start,
                     credited_minutes=minutes, work_date=day, review_status=review, flags=flags)
    session.add(att)
    session.flush()
    session.add(AttendanceCredit(attendance_id=att.id, volunteer_id=vol.id, work_date=day, minutes=minutes))
    session.commit()
    return att


def test_premium_is_charged_to_each_year_by_the_days_it_covers(app, session, client, auth):
    """Two consecutive year-long policies (15 March – 14 March) make 10 元/人 in the year between, not 20."""
    v = _vol(session, 1)
    first = create_policy(session, insurer="保险公司", policy_no="P-2025", cover_start=date(2025, 3, 15),
                          cover_end=date(2026, 3, 14), premium_per_person=Decimal("10"))
    second = create_policy(session, insurer="保险公司", policy_no="P-2026", cover_start=date(2026, 3, 15),
                           cover_end=date(2027, 3, 14), premium_per_person=Decimal("10"))
    _cover(session, first, v)
    _cover(session, second, v)
    row = compute_indicators(session, 2026, today=date(2027, 1, 10)).row(2)
    assert row.value == 10.0 and row.status == "green" and row.actual.startswith("10.00 元/人")
    shares = {p["policy_no"]: (p["share"], p["charged"]) for p in row.evidence["policies"]}
    assert shares == {"P-2025": ("73/365", 2.0), "P-2026": ("292/365", 8.0)}
    assert compute_indicators(session, 2025, today=date(2027, 1, 10)).row(2).value == 8.0  # 292/365 of the first
    auth.login()
    api = client.get("/api/v1/indicators?year=2026").get_json()
    assert next(r for r in api["indicators"] if r["number"] == 2)["value"] == 10.0
    drill = client.get("/coord/programme/indicator/2?year=2026").get_data(as_text=True)
    assert "73/365" in drill and "292/365" in drill and "P-2026" in drill


def test_insured_on_time_means_cover_in_force_on_the_first_patrol(session):
    """A lapse on the day of the first patrol is late whatever comes later; rejected records are no patrol."""
    lapsed, rejected_first, fine = _vol(session, 1), _vol(session, 2), _vol(session, 3)
    january = create_policy(session, insurer="保险公司", policy_no="P-JAN", cover_start=date(2027, 1, 1),
                            cover_end=date(2027, 1, 31), premium_per_person=Decimal("1"))
    rest = create_policy(session, insurer="保险公司", policy_no="P-REST", cover_start=date(2027, 3, 1),
                         cover_end=date(2027, 12, 31), premium_per_person=Decimal("8"))
    late_start = create_policy(session, insurer="保险公司", policy_no="P-0110", cover_start=date(2027, 1, 10),
                               cover_end=date(2027, 12, 31), premium_per_person=Decimal("9"))
    _cover(session, january, lapsed, fine)
    _cover(session, rest, lapsed, fine)
    _cover(session, late_start, rejected_first)
    _patrol(session, lapsed, date(2027, 2, 10))           # between the two policies: not covered that day
    _patrol(session, lapsed, date(2027, 3, 10))
    _patrol(session, rejected_first, date(2027, 1, 5), review="rejected")   # before cover, but rejected
    _patrol(session, rejected_first, date(2027, 1, 15))
    _patrol(session, fine, date(2027, 1, 20))
    update_year(session, 2027, insurance_due=date(2027, 3, 31))
    row = compute_indicators(session, 2027, today=date(2028, 1, 5)).row(10)
    late = {item["volunteer_id"]: item for item in row.evidence["late"]}
    assert set(late) == {lapsed.id}
    assert late[lapsed.id]["reason"] == "lapsed_at_first_patrol" and late[lapsed.id]["date"] == "2027-02-10"
    assert row.actual.startswith("66.7%（2/3）")


def test_a_refused_uninsured_check_in_counts_against_indicator_10(app, session, client, auth):
    """`enforce` leaves no attendance: the scan record's refusal code is enough, and it is listed."""
    from services.checkin import ScanRules
    from tests.services.test_checkin import World, local

    w = World(session)
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    covered, refused_vol = w.vols[0], w.vols[1]
    policy = create_policy(session, insurer="保险公司", policy_no="P-1", cover_start=date(2027, 1, 1),
                           cover_end=date(2027, 12, 31), premium_per_person=Decimal("9"))
    _cover(session, policy, covered)
    rules = ScanRules(insurance_gate="enforce")
    with pytest.raises(Exception) as exc:
        w.scan(refused_vol, w.p1, local(2027, 2, 5, 18), rules=rules)
    assert getattr(exc.value, "code", None) == "uninsured"
    assert session.scalar(select(Attendance.id).where(Attendance.volunteer_id == refused_vol.id)) is None
    # the office adds the volunteer to the list the next day, before the due date: still late
    later = create_policy(session, insurer="保险公司", policy_no="P-2", cover_start=date(2027, 2, 6),
                          cover_end=date(2027, 12, 31), premium_per_person=Decimal("9"))
    _cover(session, later, refused_vol)
    update_year(session, 2027, insurance_due=date(2027, 3, 31))
    row = compute_indicators(session, 2027, today=date(2028, 1, 5)).row(10)
    late = {item["volunteer_id"]: item for item in row.evidence["late"]}
    assert refused_vol.id in late and covered.id not in late and late[refused_vol.id]["reason"] == "refused_uninsured"
    assert row.evidence["refusals"] == [{"volunteer_id": refused_vol.id, "name": refused_vol.name, "date": "2027-02-05"}]
    auth.login()
    drill = client.get("/coord/programme/indicator/10?year=2027").get_data(as_text=True)
    assert refused_vol.name in drill.split("依据")[0] and "2027-02-05" in drill


def test_exports_and_the_api_use_that_years_hours_target(app, session, client, auth):
    from services.exports import hours_roster_xlsx, self_evaluation_xlsx
    from tests.live import MovableClock
    from tests.services.test_checkin import local

    """Item 18: "是否达标" and hours_target follow the year's setting (6.5 h), not the built-in 6 h."""
    app.config["CLOCK"] = MovableClock(local(2027, 6, 1, 12))
    try:
        vid = auth.volunteer()
        add_adjustment(session, vid, minutes=370, work_date=date(2027, 3, 1), reason="补录", by_user_id=None)
        update_year(session, 2027, target_hours=6.5)
        assert client.get("/api/v1/me").get_json()["hours_target"] == 6.5
    finally:
        app.config.pop("CLOCK", None)
    ws = load_workbook(BytesIO(hours_roster_xlsx(session, 2027, as_of=date(2027, 6, 1)))).active
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert rows[0][6] == 6.1 and rows[0][7] == "否"
    report = compute_indicators(session, 2027, today=date(2028, 1, 5))
    ws = load_workbook(BytesIO(self_evaluation_xlsx(report))).active
    table = {row[0]: row for row in ws.iter_rows(min_row=4, values_only=True) if isinstance(row[0], int)}
    assert table[6][4] == "≥6.5 小时" and table[6][6] == "未达成"
    auth.login()
    xlsx = client.get("/coord/programme/export/hours.xlsx?year=2027")
    assert list(load_workbook(BytesIO(xlsx.data)).active.iter_rows(min_row=2, values_only=True))[0][7] == "否"


def test_targets_are_shown_as_the_year_sets_them(session):
    """Item 18: a target of 6.5 h, 10.50 元 or 92.5 % is not shown rounded to a whole number."""
    update_year(session, 2027, target_hours=6.5, target_insurance_per_person=Decimal("10.50"),
                target_satisfaction=0.925)
    report = compute_indicators(session, 2027, today=date(2027, 6, 1))
    assert report.row(6).target == "≥6.5 小时"
    assert report.row(2).target == "≤10.50 元/人" and report.row(1).target == "≤15,000 元"
    assert report.row(14).target == "≥92.5%"
