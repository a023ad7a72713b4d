"""Indicator drill-downs in pages of 100 (issue 13 item 8): the page after the team filter and the
sort, the edges (none, exactly one page, the last page, past the end), and over HTTP the second
page showing the rest with the filter and sort kept, while the .xlsx export keeps every row."""
from __future__ import annotations

import re
from datetime import date
from io import BytesIO

from openpyxl import load_workbook
from sqlalchemy import insert

from models import Volunteer
from services.indicator_views import Drilldown, drilldown, drilldown_page
from services.indicators import compute_indicators

Y = 2025


def _table(n: int) -> Drilldown:
    return Drilldown("t", ["a"], [[i] for i in range(n)], list(range(n)), [])


def test_pages_of_a_table():
    empty = drilldown_page(_table(0), 1)
    assert (empty.rows, empty.total, empty.page, empty.pages, empty.first, empty.last) == ([], 0, 1, 1, 0, 0)
    one = drilldown_page(_table(100), 1)
    assert (one.total, one.pages, one.first, one.last) == (100, 1, 1, 100)
    last = drilldown_page(_table(250), 3)
    assert [r[0] for r in last.rows] == list(range(200, 250)) and last.volunteer_ids == list(range(200, 250))
    assert (last.page, last.pages, last.first, last.last) == (3, 3, 201, 250)
    assert drilldown_page(_table(250), 99).page == 3 and drilldown_page(_table(250), -4).page == 1


def _roster(session, n: int) -> None:
    session.execute(insert(Volunteer), [{"name": f"队员{i:03d}", "phone": f"138{i:08d}",
                                         "team": "塘口居委" if i % 2 else "三林居委", "joined_on": date(Y, 1, 1)}
                                        for i in range(n)])
    session.commit()


def test_indicator_4_sorted_and_filtered_then_paged(session):
    _roster(session, 250)
    report = compute_indicators(session, Y, today=date(Y, 12, 1))
    dd = drilldown(session, report, 4, team="塘口居委", sort=0, descending=True)
    page = drilldown_page(dd, 2)
    assert page.total == 125 and page.pages == 2 and len(page.rows) == 25
    assert page.rows[0][0] == "队员049" and page.rows[-1][0] == "队员001"


def test_the_second_page_over_http_keeps_filter_and_sort_and_the_export_has_all(session, client, auth):
    _roster(session, 250)
    auth.login()
    first = client.get(f"/coord/programme/indicator/4?year={Y}&team=塘口居委&sort=0&desc=1").get_data(as_text=True)
    assert len(re.findall(r'href="/coord/volunteers/\d+', first)) == 100 and "第 1–100 条，共 125 条" in first
    assert "队员249" in first and "队员049" not in first
    nxt = re.search(r'href="([^"]+)">下一页', first).group(1).replace("&amp;", "&")
    assert "page=2" in nxt and "sort=0" in nxt and "desc=1" in nxt and "team=" in nxt
    second = client.get(nxt).get_data(as_text=True)
    assert len(re.findall(r'href="/coord/volunteers/\d+', second)) == 25 and "队员049" in second and "队员249" not in second
    assert "第 101–125 条，共 125 条" in second and "下一页" not in second
    whole = client.get(f"/coord/programme/indicator/4?year={Y}").get_data(as_text=True)
    assert "共 250 条" in whole
    resp = client.get(f"/coord/programme/indicator/4/export.xlsx?year={Y}&team=塘口居委")
    rows = list(load_workbook(BytesIO(resp.data), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert resp.status_code == 200 and len(rows) == 1 + 125


def test_a_leader_gets_no_drilldown(client, auth):
    auth.login("leader1", role="leader")
    assert client.get(f"/coord/programme/indicator/4?year={Y}&page=2").status_code in (302, 403)


def test_indicator_4_from_the_database_matches_the_built_table(session):
    """The page read with SQL (filter, sort, offset) shows what slicing the full table shows, for
    every column both ways, blanks and ties included, with and without a team."""
    people = [("张三", "塘口居委", date(Y, 3, 1)), ("李四", None, date(Y, 1, 1)), ("王五", "", date(Y, 2, 1)),
              ("赵六", "三林居委", date(Y, 3, 1)), ("Ann", "塘口居委", date(Y, 2, 1)), ("张三", "三林居委", date(Y, 3, 1)),
              ("钱七", "塘口居委", date(Y, 2, 1)), ("孙八", None, date(Y, 6, 1)), ("周九", "三林居委", date(Y, 1, 1))]
    session.execute(insert(Volunteer), [{"name": n, "phone": f"1380000{i:04d}", "team": t, "joined_on": j}
                                        for i, (n, t, j) in enumerate(people)])
    session.execute(insert(Volunteer), [{"name": "走了", "phone": "13999999999", "team": "塘口居委",
                                         "joined_on": date(Y, 1, 1), "withdrawn_on": date(Y, 2, 1)}])
    session.commit()
    report = compute_indicators(session, Y, today=date(Y, 12, 1))
    from services.indicator_views import roster_drilldown_page
    for team in (None, "塘口居委"):
        for sort in (None, 0, 1, 2, 3):
            for descending in (False, True):
                full = drilldown(session, report, 4, team=team, sort=sort, descending=descending)
                for page in (1, 2, 3):
                    want = drilldown_page(full, page, per_page=4)
                    dd, got = roster_drilldown_page(session, report, team=team, sort=sort, descending=descending,
                                                    page=page, per_page=4)
                    assert (got.rows, got.volunteer_ids, got.total, got.page, got.pages) == \
                        (want.rows, want.volunteer_ids, want.total, want.page, want.pages), (team, sort, descending, page)
                    assert dd.teams == full.teams and dd.summary == full.summary and dd.columns == full.columns
