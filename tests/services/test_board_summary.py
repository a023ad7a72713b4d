"""The board summarised for a district (issue 13 item 8): counts for every point row, the missing
and on-patrol lists capped with how many more, the rows with a problem drawn first, one point's
board in full, and the fingerprint behind the rows fragment's ETag."""
from __future__ import annotations

import pytest

from models import User
from services.board import on_patrol_list, fingerprint, today, tonight
from services.clock import fixed_clock
from tests.services.test_board_and_review import _night
from tests.services.test_checkin import World, local

LATE = fixed_clock(local(2027, 2, 5, 19, 30))   # both shifts started: 志愿者2 (P1) and 志愿者5 (P2) missing


@pytest.fixture
def w(session):
    world = World(session)
    world.user = User(username="coord", password_hash="x", role="coordinator")
    session.add(world.user)
    session.commit()
    return world


def test_an_empty_night(w):
    board = tonight(w.session, clock=LATE)
    assert board.campaigns == [] and board.missing_people == [] and board.missing_more == 0
    assert board.totals.shifts == 0 and board.points == [] and board.hidden_problems == 0
    patrol = on_patrol_list(w.session)
    assert patrol.rows == [] and patrol.total == 0 and patrol.more == 0


def test_the_missing_list_is_capped_with_how_many_more(w):
    _night(w)
    full = tonight(w.session, clock=LATE, missing_limit=2)        # exactly the cap: nothing more
    assert [m.name for _r, m in full.missing_people] == ["志愿者2", "志愿者5"] and full.missing_more == 0
    capped = tonight(w.session, clock=LATE, missing_limit=1)
    assert [m.name for _r, m in capped.missing_people] == ["志愿者2"]
    assert capped.totals.missing == 2 and capped.missing_more == 1
    none = tonight(w.session, clock=LATE, missing_limit=0)      # the dashboard: counts only
    assert none.missing_people == [] and none.totals.missing == 2
    assert [p.missing_count for c in none.campaigns for s in c.slots for p in s.points] == [1, 1]


def test_rows_with_a_problem_first_the_rest_counted(w):
    s1, s2 = _night(w)
    early = tonight(w.session, clock=fixed_clock(local(2027, 2, 5, 18, 20)))
    slot1, slot2 = early.campaigns[0].slots
    assert [p.shift_id for p in slot1.shown] == [s1.id]              # 志愿者2 missing, a walk-in
    assert slot2.shown == [] and [p.shift_id for p in slot2.quiet] == [s2.id]   # P2 not started: quiet
    assert slot2.quiet_expected == 1
    capped = tonight(w.session, clock=LATE, point_limit=1)
    shown = [p.shift_id for c in capped.campaigns for s in c.slots for p in s.shown]
    assert shown == [s1.id]                            # one missing and a walk-in beats one missing
    assert capped.hidden_problems == 1 and capped.campaigns[0].slots[1].hidden_problems == 1
    day = today(w.session, clock=fixed_clock(local(2027, 2, 5, 18, 20)))
    # the dashboard fills the places left with the quiet rows
    assert [p.shift_id for c in day.board.campaigns for s in c.slots for p in s.shown] == [s1.id, s2.id]


def test_one_points_board_in_full(w):
    s1, s2 = _night(w)
    board = tonight(w.session, clock=LATE, point_id=w.p2.id, missing_limit=0, point_limit=0)
    assert board.point.code == "P2" and [p.code for p in board.points] == ["P1", "P2"]
    assert [p.shift_id for c in board.campaigns for s in c.slots for p in s.points] == [s2.id]
    assert [p.shift_id for c in board.campaigns for s in c.slots for p in s.shown] == [s2.id]   # all its rows
    assert [m.name for _r, m in board.missing_people] == ["志愿者5"] and board.missing_more == 0
    assert board.totals.expected == 1
    quiet = tonight(w.session, clock=LATE, point_id=w.far.id)   # no shift there tonight
    assert quiet.point.code == "P3" and quiet.campaigns == [] and quiet.totals.shifts == 0


def test_on_patrol_capped_and_by_point(w):
    _night(w)                                     # 志愿者0 and the walk-in 志愿者4 are out at P1
    capped = on_patrol_list(w.session, limit=1)
    assert len(capped.rows) == 1 and capped.total == 2 and capped.more == 1
    assert on_patrol_list(w.session, limit=2).more == 0
    assert on_patrol_list(w.session, point_id=w.p1.id).total == 2
    assert on_patrol_list(w.session, point_id=w.p2.id).rows == []


def test_fingerprint_changes_with_what_the_fragment_shows_only(w):
    s1, _s2 = _night(w)
    a = tonight(w.session, clock=fixed_clock(local(2027, 2, 5, 19, 30)))
    b = tonight(w.session, clock=fixed_clock(local(2027, 2, 5, 19, 31)))     # a minute on, nothing new
    patrol = on_patrol_list(w.session)
    assert fingerprint(a, patrol, [], "zh") == fingerprint(b, patrol, [], "zh")
    assert fingerprint(a, patrol, [], "zh") != fingerprint(a, patrol, [], "en")
    w.scan(w.vols[2], w.p1, local(2027, 2, 5, 19, 31))                        # the missing one arrives
    c = tonight(w.session, clock=fixed_clock(local(2027, 2, 5, 19, 32)))
    assert c.totals.missing == 1
    assert fingerprint(c, on_patrol_list(w.session), [], "zh") != fingerprint(a, patrol, [], "zh")
