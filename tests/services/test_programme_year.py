"""The programme year as a setting (issue 9, item 19) and each year's own settings in exports and the
API (item 18): a year that starts 1 March, across the boundary, in the services and on every surface."""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from models import ProgrammeYear, Volunteer
from services.clock import from_local
from services.digest import digest_text
from services.errors import DomainError
from services.hours import volunteer_hours
from services.indicators import compute_indicators
from services.programme import add_expenditure, programme_year, update_year
from services.programme_year import (YearStart, programme_year_of, set_year_start, year_bounds, year_dates,
                                     year_start)
from services.review import add_adjustment
from tests.live import MovableClock
from tests.services.test_checkin import World, local


def test_a_year_starting_1_march_is_labelled_by_the_calendar_year_it_starts_in(session):
    assert year_start(session) == YearStart(1, 1)
    assert programme_year_of(session, date(2027, 12, 31)) == 2027 and year_dates(session, 2027)[1] == date(2027, 12, 31)
    set_year_start(session, "03-01", by="test")
    assert programme_year_of(session, date(2027, 2, 28)) == 2026
    assert programme_year_of(session, date(2027, 3, 1)) == 2027
    assert year_dates(session, 2027) == (date(2027, 3, 1), date(2028, 2, 29))
    start, end = year_bounds(session, 2027)
    assert start == from_local(datetime(2027, 3, 1)) and end == from_local(datetime(2028, 3, 1))
    for bad in ("02-29", "13-01", "abc", ""):
        with pytest.raises(DomainError) as exc:
            set_year_start(session, bad, by="test")
        assert exc.value.code == "bad_year_start"


def test_default_due_dates_follow_the_start_until_data_exists(session):
    assert programme_year(session, 2027).insurance_due == date(2027, 3, 31)
    update_year(session, 2027, equipment_due=date(2027, 4, 15))    # chosen by someone: kept
    set_year_start(session, "03-01", by="test")
    row = session.get(ProgrammeYear, 2027)
    assert (row.insurance_due, row.equipment_due) == (date(2027, 5, 31), date(2027, 4, 15))
    assert programme_year(session, 2028).insurance_due == date(2028, 5, 31)


def test_hours_indicators_and_ledgers_across_the_1_march_boundary(session):
    set_year_start(session, "3-1", by="test")
    w = World(session)
    vol = w.vols[0]
    w.shift(w.p1, local(2027, 2, 28, 18), local(2027, 2, 28, 21))
    w.shift(w.p1, local(2027, 3, 1, 18), local(2027, 3, 1, 21))
    w.scan(vol, w.p1, local(2027, 2, 28, 18))
    assert w.scan(vol, w.p1, local(2027, 2, 28, 21)).year_minutes == 180
    w.scan(vol, w.p1, local(2027, 3, 1, 18))
    out = w.scan(vol, w.p1, local(2027, 3, 1, 21))
    assert out.year_minutes == 180   # the February patrol belongs to year 2026
    assert volunteer_hours(session, vol.id, 2026).total_minutes == 180
    assert volunteer_hours(session, vol.id, 2027).total_minutes == 180
    report = compute_indicators(session, 2027, today=date(2027, 3, 2))
    assert report.year_to_date and report.as_of == date(2027, 3, 2)
    assert list(report.hours_by_month)[:2] == [3, 4] and report.hours_by_month[3] == 3.0
    assert report.hours_by_month[2] == 0.0
    assert compute_indicators(session, 2026, today=date(2027, 3, 2)).hours_by_month[2] == 3.0
    add_expenditure(session, year=2026, line="work_fund", spent_on=date(2027, 2, 15), amount=Decimal("100"),
                    description="二月的餐费")
    with pytest.raises(DomainError) as exc:
        add_expenditure(session, year=2027, line="work_fund", spent_on=date(2027, 2, 15), amount=Decimal("100"),
                        description="二月的餐费")
    assert exc.value.code == "wrong_year"
    assert compute_indicators(session, 2026, today=date(2027, 3, 2)).row(1).value == 100.0
    _title, body = digest_text(session, now=local(2027, 3, 1, 9))
    assert "（2027 年度）" in body
    # once a year holds data the start cannot move
    with pytest.raises(DomainError) as exc:
        set_year_start(session, "01-01", by="test")
    assert exc.value.code == "year_start_locked" and year_start(session) == YearStart(3, 1)


def test_the_api_the_me_page_and_the_cli_use_the_programme_year(app, session, client, auth, runner):
    set_year_start(session, "03-01", by="test")
    app.config["CLOCK"] = MovableClock(local(2027, 2, 28, 12))
    try:
        vid = auth.volunteer()
        add_adjustment(session, vid, minutes=90, work_date=date(2026, 12, 1), reason="补录", by_user_id=None)
        add_adjustment(session, vid, minutes=60, work_date=date(2027, 3, 1), reason="补录", by_user_id=None)
        update_year(session, 2026, target_hours=1.5)
        me = client.get("/api/v1/me").get_json()
        assert (me["year"], me["hours_total"], me["hours_target"]) == (2026, 1.5, 1.5)
        page = client.get("/me").get_data(as_text=True)
        assert "2026 年累计" in page
        app.config["CLOCK"].now = local(2027, 3, 1, 12)
        me = client.get("/api/v1/me").get_json()
        assert (me["year"], me["hours_total"], me["hours_target"]) == (2027, 1.0, 6.0)
    finally:
        app.config.pop("CLOCK", None)
    shown = runner.invoke(args=["programme-year-start"])
    assert shown.exit_code == 0 and "03-01" in shown.output
    refused = runner.invoke(args=["programme-year-start", "01-01"])
    assert refused.exit_code != 0 and "不能再修改" in refused.output
    result = runner.invoke(args=["indicators", "--year", "2026", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["year"] == 2026


def test_the_admin_sets_the_start_on_the_settings_page_and_by_cli(app, session, client, auth, runner):
    auth.login("boss", "admin")
    from tests.conftest import csrf_from
    token = csrf_from(client, "/coord/programme/settings")
    resp = client.post("/coord/programme/settings/year-start", data={"year_start": "04-01", "csrf_token": token})
    assert resp.status_code == 302
    assert year_start(session) == YearStart(4, 1)
    page = client.get("/coord/programme/settings?year=2027").get_data(as_text=True)
    assert "2027-04-01" in page and "2028-03-31" in page
    assert runner.invoke(args=["programme-year-start", "03-01"]).exit_code == 0
    session.expire_all()
    assert year_start(session) == YearStart(3, 1)
    session.add(Volunteer(name="甲", phone="13800000009", joined_on=date(2027, 1, 1)))
    session.commit()
    add_adjustment(session, session.query(Volunteer).first().id, minutes=10, work_date=date(2027, 3, 5), reason="补录一次",
                   by_user_id=None)
    resp = client.post("/coord/programme/settings/year-start", data={"year_start": "01-01", "csrf_token": token},
                       follow_redirects=True)
    assert "不能再修改" in resp.get_data(as_text=True)
    session.expire_all()
    assert year_start(session) == YearStart(3, 1)
