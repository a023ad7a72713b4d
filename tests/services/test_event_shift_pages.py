"""One campaign's shifts in keyset pages with a summary per local day (issue 13 item 8: a district
campaign is 500 points × 5 days): none, exactly one page, the last page and back, and the day
boundary in Shanghai time."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert

from models import Assignment, Shift
from services.clock import SHANGHAI, from_local
from services.errors import DomainError
from services.events import event_shifts_page
from tests.services.test_checkin import World


@pytest.fixture
def w(session):
    return World(session)


def _shifts(w, n: int) -> list[int]:
    """n shifts, one every two hours from 5 Feb 18:00 local, alternating P1 and P2; one person
    assigned to the first."""
    start = from_local(datetime(2027, 2, 5, 18))
    w.session.execute(insert(Shift), [{"event_id": w.event.id, "point_id": (w.p1 if i % 2 == 0 else w.p2).id,
                                       "starts_at": start + timedelta(hours=2 * i),
                                       "ends_at": start + timedelta(hours=2 * i + 1), "capacity": 3}
                                      for i in range(n)])
    w.session.commit()
    ids = [s.id for s in w.session.query(Shift).order_by(Shift.starts_at, Shift.id)]
    if ids:
        w.session.execute(insert(Assignment), [{"shift_id": ids[0], "volunteer_id": w.vols[0].id}])
        w.session.commit()
    return ids


def test_no_shifts(w):
    page = event_shifts_page(w.session, w.event.id, zone=SHANGHAI)
    assert (page.rows, page.total, page.days, page.later, page.earlier) == ([], 0, [], None, None)


def test_exactly_one_page_and_the_days_in_local_time(w):
    ids = _shifts(w, 5)     # 18:00, 20:00, 22:00 on the 5th; 00:00, 02:00 on the 6th (Shanghai)
    page = event_shifts_page(w.session, w.event.id, zone=SHANGHAI, per_page=5)
    assert [s.id for s in page.rows] == ids and page.later is None and page.earlier is None
    assert [(d.day, d.shifts, d.capacity, d.assigned) for d in page.days] == [(date(2027, 2, 5), 3, 9, 1),
                                                                             (date(2027, 2, 6), 2, 6, 0)]
    assert page.rows[0].assigned == 1 and page.rows[0].point_code == "P1" and page.rows[1].point_name == "二号点"


def test_pages_to_the_last_and_back(w):
    ids = _shifts(w, 11)
    first = event_shifts_page(w.session, w.event.id, zone=SHANGHAI, per_page=4)
    second = event_shifts_page(w.session, w.event.id, zone=SHANGHAI, per_page=4, cursor=first.later)
    last = event_shifts_page(w.session, w.event.id, zone=SHANGHAI, per_page=4, cursor=second.later)
    assert [[s.id for s in p.rows] for p in (first, second, last)] == [ids[:4], ids[4:8], ids[8:]]
    assert last.later is None and first.earlier is None and last.total == 11
    back = event_shifts_page(w.session, w.event.id, zone=SHANGHAI, per_page=4, cursor=last.earlier)
    assert [s.id for s in back.rows] == ids[4:8]
    with pytest.raises(DomainError):
        event_shifts_page(w.session, w.event.id, zone=SHANGHAI, cursor="zzz")


def test_the_campaign_page_over_http(session, client, auth):
    w = World(session)
    ids = _shifts(w, 130)
    auth.login()
    page = client.get(f"/coord/events/{w.event.id}").get_data(as_text=True)
    assert page.count('href="/coord/events/shifts/') == 100 and '<small class="muted" id="shift-total">130</small>' in page
    assert 'id="shift-days"' in page
    nxt = re.search(r'href="([^"]+)">下一页', page).group(1).replace("&amp;", "&")
    rest = client.get(nxt).get_data(as_text=True)
    assert rest.count('href="/coord/events/shifts/') == 30 and f'/coord/events/shifts/{ids[-1]}"' in rest
    assert "下一页" not in rest and "上一页" in rest
    assert client.get(f"/coord/events/{w.event.id}?cursor=bogus").status_code == 200   # the first page
