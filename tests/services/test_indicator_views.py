"""Item 5 of issue 12: charts whose colours agree with the cards, buckets and weeks in order with
readable labels, and drill-downs as tables (team filter, sort, .xlsx export, a "remind them")."""
from __future__ import annotations

from datetime import date
from io import BytesIO

from openpyxl import load_workbook
from sqlalchemy import select

from models import Message, MessageRecipient, Volunteer
from services.indicator_views import (OK, SHORT, bar_colour, drilldown, histogram_chart, satisfaction_chart,
                                      week_label, weekly_chart)
from services.indicators import IndicatorReport, IndicatorRow, compute_indicators
from services.programme import update_year
from services.review import add_adjustment
from tests.conftest import csrf_from
from tests.services.test_indicators import programme  # noqa: F401  (fixture)

Y = 2025


def _report(histogram=None, weekly=(), rounds=(), target_hours="≥6 小时", target_sat="≥90%"):
    rows = [IndicatorRow(n, "", "", "", target_hours if n == 6 else target_sat if n == 14 else "", "", "red")
            for n in range(1, 15)]
    return IndicatorReport(Y, date(Y, 12, 1), True, rows, {},
                           histogram or {"0": 3, "0–3": 2, "3–6": 5, "6–12": 7, "12+": 1}, list(rounds), list(weekly))


def test_histogram_is_in_bucket_order_and_red_under_the_target():
    chart = histogram_chart(_report())
    assert [b.label for b in chart.bars] == ["0 h", "0–3 h", "3–6 h", "6–12 h", "12+ h"]
    assert [b.value for b in chart.bars] == [3, 2, 5, 7, 1]
    assert [b.colour for b in chart.bars] == [SHORT, SHORT, SHORT, OK, OK]


def test_the_service_builds_the_histogram_in_bucket_order_with_the_years_target(session):
    update_year(session, Y, target_hours=6.5)
    report = compute_indicators(session, Y, today=date(Y, 12, 1))
    assert list(report.hours_histogram) == ["0", "0–3", "3–6.5", "6.5–12", "12+"]
    assert [b.label for b in histogram_chart(report).bars] == ["0 h", "0–3 h", "3–6.5 h", "6.5–12 h", "12+ h"]


def test_a_bar_is_green_only_when_it_meets_the_target():
    chart = satisfaction_chart(_report(rounds=[("年中", 0.876, 40), ("年末", 0.93, 50)]))
    assert chart.target == 90 and "90" in chart.target_label
    assert [(b.text, b.colour) for b in chart.bars] == [("87.6%", SHORT), ("93.0%", OK)]
    assert bar_colour(15000, 15000, at_most=True) == OK and bar_colour(15001, 15000, at_most=True) == SHORT


def test_weeks_are_labelled_by_their_dates():
    assert week_label("2024-W47") == "11月18日–24日"
    assert week_label("2026-W49") == "11月30日–12月6日"
    chart = weekly_chart(_report(weekly=[("2024-W46", 3.0), ("2024-W47", 10.5)]))
    assert [b.label for b in chart.bars] == ["11月11日–17日", "11月18日–24日"] and chart.bars[1].text == "10.5 h"


def _people(session):
    for i, (team, minutes) in enumerate((("塘口居委", 0), ("塘口居委", 200), ("三林居委", 500), ("三林居委", 30))):
        v = Volunteer(name=f"队员{i}", phone=f"1380000000{i}", team=team, joined_on=date(Y, 1, 1))
        session.add(v)
        session.flush()
        if minutes:
            add_adjustment(session, v.id, minutes=minutes, work_date=date(Y, 3, 1), reason="补录", by_user_id=None)
    session.commit()


def test_indicator_6_drilldown_lists_who_is_short_by_team_with_their_hours(session):
    _people(session)
    report = compute_indicators(session, Y, today=date(Y, 12, 1))
    dd = drilldown(session, report, 6)
    assert dd.columns[:3] == ["姓名", "居委", "手机"]
    assert {r[0]: (r[1], r[3], r[4]) for r in dd.rows} == {"队员0": ("塘口居委", 0.0, 6.0), "队员1": ("塘口居委", 3.3, 2.7),
                                                          "队员3": ("三林居委", 0.5, 5.5)}
    assert dd.by_team == [("塘口居委", 2, 2), ("三林居委", 1, 2)]
    assert [r[0] for r in drilldown(session, report, 6, team="三林居委").rows] == ["队员3"]
    assert [r[0] for r in drilldown(session, report, 6, sort=3, descending=True).rows] == ["队员1", "队员3", "队员0"]


def test_drilldown_exports_to_xlsx_and_remind_sends_one_notice(session, client, auth):
    _people(session)
    auth.login()
    page = client.get(f"/coord/programme/indicator/6?year={Y}&team=塘口居委").get_data(as_text=True)
    assert "队员1" in page and "队员3" not in page and "tel:13800000001" in page and "<pre" not in page
    # Sorting from the form (a phone shows the table as cards, without its column titles).
    sorted_page = client.get(f"/coord/programme/indicator/6?year={Y}&team=塘口居委&sort=3&desc=1").get_data(as_text=True)
    assert '<option value="3" selected>已计时长（小时）</option>' in sorted_page
    assert '<option value="1" selected>从大到小</option>' in sorted_page
    assert sorted_page.index("队员1") < sorted_page.index("队员0")
    assert client.get(f"/coord/programme/indicator/6?year={Y}&sort=&desc=0").status_code == 200   # "default order"
    xlsx = client.get(f"/coord/programme/indicator/6/export.xlsx?year={Y}&team=塘口居委&sort=3&desc=1")
    assert xlsx.status_code == 200
    rows = list(load_workbook(BytesIO(xlsx.data)).active.iter_rows(values_only=True))
    assert rows[0][:5] == ("姓名", "居委", "手机", "已计时长（小时）", "还差（小时）")
    assert rows[1:] == [("队员1", "塘口居委", "13800000001", 3.3, 2.7), ("队员0", "塘口居委", "13800000000", 0, 6)]
    token = csrf_from(client, f"/coord/programme/indicator/6?year={Y}")
    for _ in range(2):  # a double click sends once
        r = client.post(f"/coord/programme/indicator/6/remind?year={Y}", data={"team": "三林居委", "nonce": "n-1",
                                                                              "csrf_token": token})
        assert r.status_code == 302
    messages = session.scalars(select(Message).where(Message.title == "服务时长提醒")).all()
    assert len(messages) == 1
    names = session.scalars(select(Volunteer.name).join(MessageRecipient, MessageRecipient.volunteer_id == Volunteer.id)
                            .where(MessageRecipient.message_id == messages[0].id)).all()
    assert names == ["队员3"]


def test_a_card_says_what_is_missing():
    from services.indicator_views import gap_text
    assert gap_text(IndicatorRow(4, "", "", "", "=500 人", "488 人", "amber", 488)) == "还差 12 人"
    assert gap_text(IndicatorRow(6, "", "", "", "≥6 小时", "", "red", 4.2, evidence={"below_count": 312})) == \
        "312 人未达到目标时长"
    assert gap_text(IndicatorRow(14, "", "", "", "≥90%", "", "red", 0.876)) == "差 2.4 个百分点"
    assert gap_text(IndicatorRow(4, "", "", "", "=500 人", "501 人", "green", 501)) == ""


def test_every_drilldown_is_a_sortable_table_with_an_xlsx_export(client, auth, programme):  # noqa: F811
    """Item 5 of issue 12: all 14 drill-downs are tables (no JSON dump), each exports to .xlsx with
    a header row, sorts server-side, and says when its rows are records without a team."""
    auth.login()
    for number in range(1, 15):
        page = client.get(f"/coord/programme/indicator/{number}?year={Y}")
        assert page.status_code == 200, number
        html = page.get_data(as_text=True)
        assert "<table" in html and '{"' not in html and "<pre" not in html, number
        assert f"/coord/programme/indicator/{number}/export.xlsx" in html, number
        assert client.get(f"/coord/programme/indicator/{number}?year={Y}&sort=1&desc=1").status_code == 200, number
        xlsx = client.get(f"/coord/programme/indicator/{number}/export.xlsx?year={Y}&sort=0")
        assert xlsx.status_code == 200, number
        rows = list(load_workbook(BytesIO(xlsx.data)).active.iter_rows(values_only=True))
        assert rows and all(isinstance(c, str) and c for c in rows[0]), number
        if number in (4, 6, 7, 9, 10):
            assert 'name="team"' in html, number
        else:
            assert 'name="team"' not in html and "不分居委" in html, number


def test_equipment_drilldowns_show_the_deliveries_and_the_per_person_computation(session, programme):  # noqa: F811
    report = compute_indicators(session, Y, today=date(Y, 12, 1))
    for number in (3, 5, 8):
        dd = drilldown(session, report, number)
        assert dd.rows == [[f"{Y}-01-20", "某服装厂", 5, 55.0, 275.0, 4, 1, ""]]
        assert dd.team_column is None
    assert "275.00 元 ÷ 已发放装备 4 人 = 68.75 元/人" in drilldown(session, report, 3).summary[0]
    assert "不合格 1 套" in drilldown(session, report, 8).summary[0]


def test_indicator_7_lists_the_attendances_that_did_not_close_normally(session, programme):  # noqa: F811
    report = compute_indicators(session, Y, today=date(Y, 12, 1))
    dd = drilldown(session, report, 7)
    assert dd.columns[:3] == ["姓名", "居委", "手机"] and "审核状态" in dd.columns
    ev = report.row(7).evidence
    assert len(dd.rows) == ev["total"] - ev["normal"]
    assert ("志愿者A", "13911110001", f"{Y}-10-01", "no_location", "待核对") in [(r[0], r[2], r[3], r[8], r[9])
                                                                            for r in dd.rows]
    assert drilldown(session, report, 7, team="别的居委").rows == []


def test_chart_labels_get_the_room_they_need_and_long_ones_are_cut():
    """Week labels were cut at the SVG's left edge ("月28日–10月4日") and "182 people" at its right."""
    from services.indicator_views import Bar, Chart, text_width

    weekly = Chart([Bar("9月28日–10月4日", 12.0, "#000", "12 h"), Bar("10月5日–11日", 3.0, "#000", "3 h")])
    assert weekly.label_width >= text_width("9月28日–10月4日") + 6
    people = Chart([Bar("0–3 h", 182, "#000", "182 people")])
    assert people.value_width >= text_width("182 people") * 1.05
    long = Chart([Bar("2026年年中满意度调查（浦锦街道全体平安志愿者）", 87.6, "#000", "87.6%")])
    short = long.short_label(long.bars[0])
    assert short.endswith("…") and text_width(short) <= Chart.MAX_LABEL and short.startswith("2026年")
    assert long.label_width <= Chart.MAX_LABEL + 10
    assert weekly.short_label(weekly.bars[0]) == "9月28日–10月4日"   # fits: kept whole
