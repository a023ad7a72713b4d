"""The on-patrol board at scale: a per-point summary counts everyone, the table shows a bounded
number of rows (all of one point when chosen), and an unchanged board is a 304."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from models import Attendance, PatrolPoint, Volunteer
from web.coord import board


@pytest.fixture
def on_patrol(session):
    points = [PatrolPoint(code=f"P{i}", name=f"点位{i}", lat=31.0, lon=121.5, radius_m=150) for i in range(2)]
    vols = [Volunteer(name=f"戊{i:03d}", phone=f"1330000{i:04d}", joined_on=date(2026, 1, 1)) for i in range(30)]
    session.add_all([*points, *vols])
    session.flush()
    at = datetime(2027, 2, 5, 10, tzinfo=timezone.utc)
    for i, v in enumerate(vols):
        session.add(Attendance(volunteer_id=v.id, point_id=points[i % 2].id, source="scan", status="open",
                               check_in_at=at + timedelta(minutes=i), work_date=at.date(), credited_minutes=0,
                               review_status="none", flags="", walk_in=False))
    session.commit()
    return points


def test_summary_counts_everyone_and_the_table_is_bounded(client, auth, on_patrol, monkeypatch):
    monkeypatch.setattr(board, "BOARD_LIMIT", 10)
    auth.login()
    page = client.get("/coord/board/").get_data(as_text=True)
    assert 'id="board-count">30<' in page and "P0 点位0 15" in page and "P1 点位1 15" in page
    assert page.count("代签退") == 10 and "只显示前 10 人" in page
    one = client.get(f"/coord/board/?point={on_patrol[1].id}").get_data(as_text=True)
    assert one.count("代签退") == 15 and "只显示前" not in one


def test_an_unchanged_board_is_a_304(client, auth, on_patrol, session):
    auth.login()
    first = client.get("/coord/board/rows")
    assert first.status_code == 200 and first.headers["X-Board-Total"] == "30" and first.headers["ETag"]
    again = client.get("/coord/board/rows", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    row = session.query(Attendance).first()
    row.status = "closed"
    session.commit()
    changed = client.get("/coord/board/rows", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["X-Board-Total"] == "29"
