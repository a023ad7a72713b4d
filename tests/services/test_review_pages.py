"""The review queue a page at a time (issue 13 item 8): keyset pages on the queue's order
(check-in time, then id), the total under the same filters, and the edges: nothing waiting,
exactly one page, the last page, walking back, a filter kept, records decided meanwhile."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import update

from models import Attendance
from services.errors import DomainError
from services.review import queue_shifts, review_queue_page
from tests.services.test_checkin import World, local


@pytest.fixture
def w(session):
    return World(session)


def _flagged(w, n: int, *, tie: bool = False) -> list[int]:
    """n flagged records, a minute apart (or all at the same minute: the id breaks the tie); every
    third one without a location, the others outside the geofence."""
    shift = w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21), capacity=100)
    ids = []
    for i in range(n):
        at = local(2027, 2, 5, 18) + timedelta(minutes=0 if tie else i)
        att = Attendance(volunteer_id=w.vols[i % 6].id, event_id=w.event.id, shift_id=shift.id, point_id=w.p1.id,
                         status="closed", check_in_at=at, check_out_at=at + timedelta(hours=1),
                         work_date=date(2027, 2, 5), review_status="flagged",
                         flags="no_location" if i % 3 == 0 else "outside_geofence")
        w.session.add(att)
        w.session.flush()
        ids.append(att.id)
    w.session.commit()
    return ids


def _walk(w, **kw) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = review_queue_page(w.session, cursor=cursor, **kw)
        pages.append([r.id for r in page.rows])
        if not page.later:
            return pages
        cursor = page.later


def test_nothing_waiting(w):
    page = review_queue_page(w.session)
    assert (page.rows, page.total, page.later, page.earlier) == ([], 0, None, None)


def test_exactly_one_page(w):
    ids = _flagged(w, 5)
    page = review_queue_page(w.session, per_page=5)
    assert [r.id for r in page.rows] == ids and page.total == 5 and page.later is None and page.earlier is None


@pytest.mark.parametrize("tie", [False, True])
def test_pages_forward_to_the_last_and_back(w, tie):
    ids = _flagged(w, 12, tie=tie)
    pages = _walk(w, per_page=5)
    assert pages == [ids[:5], ids[5:10], ids[10:]]          # the last page is short, nothing after it
    last = review_queue_page(w.session, per_page=5, cursor=review_queue_page(
        w.session, per_page=5, cursor=review_queue_page(w.session, per_page=5).later).later)
    assert last.total == 12 and last.later is None
    back = review_queue_page(w.session, per_page=5, cursor=last.earlier)
    assert [r.id for r in back.rows] == ids[5:10] and back.earlier and back.later
    first = review_queue_page(w.session, per_page=5, cursor=back.earlier)
    assert [r.id for r in first.rows] == ids[:5] and first.earlier is None


def test_a_filter_is_kept_across_pages(w):
    ids = _flagged(w, 12)
    no_location = [i for k, i in enumerate(ids) if k % 3 == 0]
    assert _walk(w, per_page=3, flag="no_location") == [no_location[:3], no_location[3:]]
    assert review_queue_page(w.session, per_page=3, flag="no_location").total == 4
    assert review_queue_page(w.session, per_page=3, shift_id=999).total == 0


def test_records_decided_meanwhile_do_not_shift_the_next_page(w):
    ids = _flagged(w, 10)
    first = review_queue_page(w.session, per_page=4)
    w.session.execute(update(Attendance).where(Attendance.id.in_(ids[:4])).values(review_status="approved"))
    w.session.commit()
    second = review_queue_page(w.session, per_page=4, cursor=first.later)
    assert [r.id for r in second.rows] == ids[4:8] and second.total == 6
    # everything before was decided: "previous" falls back to the first page
    back = review_queue_page(w.session, per_page=4, cursor=second.earlier)
    assert [r.id for r in back.rows] == ids[4:8]


def test_a_bad_cursor_is_refused(w):
    with pytest.raises(DomainError):
        review_queue_page(w.session, cursor="x-nonsense")


def test_the_shift_picker_is_capped_but_keeps_the_chosen_shift(w):
    _flagged(w, 2)
    older = w.shift(w.p2, local(2027, 2, 4, 18), local(2027, 2, 4, 21))
    w.session.add(Attendance(volunteer_id=w.vols[0].id, event_id=w.event.id, shift_id=older.id, point_id=w.p2.id,
                             status="closed", check_in_at=local(2027, 2, 4, 18), work_date=date(2027, 2, 4),
                             review_status="flagged", flags="no_location"))
    w.session.commit()
    assert len(queue_shifts(w.session)) == 2
    assert [s.shift_id for s in queue_shifts(w.session, limit=1)] != [older.id]
    assert older.id in [s.shift_id for s in queue_shifts(w.session, limit=1, include=older.id)]
