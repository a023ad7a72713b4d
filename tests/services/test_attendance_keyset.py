"""The attendance list pages by keyset (check-in time, id): walking older from the first page, or
newer from the last, visits every record once in order, ties included, with the filters kept."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from models import Attendance, Volunteer
from services.errors import DomainError
from services.review import list_attendances


@pytest.fixture
def records(session):
    vols = [Volunteer(name=f"丁{i}", phone=f"1350000000{i}", team="甲居委" if i % 2 else "乙居委",
                      joined_on=date(2026, 1, 1)) for i in range(3)]
    session.add_all(vols)
    session.flush()
    base = datetime(2027, 2, 5, 10, 0, 0, 123456, tzinfo=timezone.utc)
    for i in range(25):
        at = base + timedelta(minutes=(i // 2) * 7)  # pairs with the same check-in time: ties
        session.add(Attendance(volunteer_id=vols[i % 3].id, source="scan", status="closed", check_in_at=at,
                               check_out_at=at + timedelta(hours=1), credited_minutes=60, work_date=at.date(),
                               review_status="none", flags="", walk_in=False))
    session.commit()
    ordered = sorted(session.query(Attendance).all(), key=lambda a: (a.check_in_at, a.id), reverse=True)
    return [a.id for a in ordered], vols


def test_walking_older_and_newer_visits_each_record_once_in_order(session, records):
    expected, _vols = records
    first = list_attendances(session, per_page=10)
    assert first.total == 25 and first.newer is None and first.older
    seen, page = [r.id for r in first.rows], first
    while page.older:
        page = list_attendances(session, per_page=10, cursor=page.older)
        seen += [r.id for r in page.rows]
    assert seen == expected

    last = list_attendances(session, per_page=10, cursor="last")
    assert last.older is None and [r.id for r in last.rows] == expected[-10:]
    back, page = [r.id for r in last.rows], last
    while page.newer:
        page = list_attendances(session, per_page=10, cursor=page.newer)
        back = [r.id for r in page.rows] + back
    assert back == expected


def test_filters_apply_to_keyset_pages_and_a_bad_cursor_is_refused(session, records):
    _expected, vols = records
    team = [r.id for r in list_attendances(session, per_page=100, team="甲居委").rows]
    page = list_attendances(session, per_page=3, team="甲居委")
    walked = [r.id for r in page.rows]
    while page.older:
        page = list_attendances(session, per_page=3, team="甲居委", cursor=page.older)
        walked += [r.id for r in page.rows]
    assert walked == team and all(r.team == "甲居委" for r in page.rows)
    with pytest.raises(DomainError) as exc:
        list_attendances(session, cursor="x-not-a-cursor")
    assert exc.value.code == "bad_cursor"


def test_the_attendance_page_links_keyset_pages(client, auth, records, monkeypatch):
    import services.review

    monkeypatch.setattr(services.review, "PAGE_SIZE", 10)
    monkeypatch.setattr(services.review.list_attendances, "__kwdefaults__",
                        {**services.review.list_attendances.__kwdefaults__, "per_page": 10})
    auth.login()
    html = client.get("/coord/attendance/").get_data(as_text=True)
    assert "cursor=o" in html and "cursor=last" in html
    last = client.get("/coord/attendance/?cursor=last")
    assert last.status_code == 200 and "cursor=n" in last.get_data(as_text=True)
    assert client.get("/coord/attendance/?cursor=zzz").status_code == 400
