"""Vest numbers typed as people type them find the volunteer; a number two volunteers share is refused."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from models import Assignment, Event, PatrolPoint, Shift, Volunteer
from services.clock import from_local
from services.errors import DomainError
from services.events import assign_volunteers
from services.review import find_volunteer
from services.vests import vest_key, volunteer_by_vest


@pytest.mark.parametrize("typed", ["1", "0001", "PJ0001", "pj 0001", "PJ-0001", "ＰＪ－０００１", " pj-1 "])
def test_every_usual_form_of_a_vest_number_has_the_same_key(typed):
    key = vest_key(typed)
    assert key is not None and key[1] == 1
    assert key[0] in ("", "PJ")


def test_text_that_is_not_a_vest_number_has_no_key():
    assert vest_key("") is None and vest_key("张三") is None and vest_key("PJ-12A") is None


def _volunteers(session):
    vols = [Volunteer(name="赵一", phone="13900000001", vest_no="PJ-0001", joined_on=date(2026, 1, 1)),
            Volunteer(name="钱十", phone="13900000010", vest_no="PJ-0010", joined_on=date(2026, 1, 1)),
            Volunteer(name="孙一", phone="13900000011", vest_no="XQ-0001", joined_on=date(2026, 1, 1))]
    session.add_all(vols)
    session.flush()
    return vols


@pytest.mark.parametrize("typed", ["PJ0001", "pj 0001", "PJ-1", "pj-0001"])
def test_a_team_leader_finds_the_volunteer_by_the_vest_number_as_typed(session, typed):
    zhao, _qian, _sun = _volunteers(session)
    assert find_volunteer(session, typed).id == zhao.id


def test_ten_is_not_one_and_digits_alone_are_refused_when_two_prefixes_share_them(session):
    _zhao, qian, _sun = _volunteers(session)
    assert find_volunteer(session, "10").id == qian.id
    assert volunteer_by_vest(session, "0010").id == qian.id
    with pytest.raises(DomainError) as err:
        find_volunteer(session, "1")
    assert err.value.code == "ambiguous_vest" and "PJ-0001" in err.value.message and "XQ-0001" in err.value.message


def test_assigning_by_typed_vest_numbers(session):
    zhao, qian, sun = _volunteers(session)
    event = Event(name="国庆巡逻", starts_on=date(2026, 10, 1), ends_on=date(2026, 10, 7))
    point = PatrolPoint(code="PJ01", name="路口", lat=31.0, lon=121.5, radius_m=150)
    session.add_all([event, point])
    session.flush()
    shift = Shift(event_id=event.id, point_id=point.id, capacity=10,
                  starts_at=from_local(datetime(2026, 10, 1, 18)), ends_at=from_local(datetime(2026, 10, 1, 21)))
    session.add(shift)
    session.flush()
    result = assign_volunteers(session, shift.id, ["pj 0001", "0010", "XQ1", "1", "PJ-0099"])
    assigned = {a.volunteer_id for a in session.query(Assignment).filter_by(shift_id=shift.id)}
    assert assigned == {zhao.id, qian.id, sun.id}
    assert result.not_found == ["1", "PJ-0099"]
