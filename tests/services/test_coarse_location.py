"""A phone with only a coarse location can still check in (review, item 8)."""
from __future__ import annotations

import pytest

from services.checkin import ScanRules, check_location
from tests.services.test_checkin import World, local, refused


@pytest.fixture
def w(session):
    return World(session)


@pytest.mark.parametrize("mode,expect", [("flag", ("no_location",)), ("off", ())])
def test_accuracy_beyond_ten_km_is_no_location_not_a_refusal(w, mode, expect):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    r = w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18), rules=ScanRules(geofence_mode=mode), accuracy=15_000)
    assert r.action == "check_in" and r.attendance.flags == expect


def test_with_enforce_a_coarse_fix_is_refused_as_no_location(w):
    w.shift(w.p1, local(2027, 2, 5, 18), local(2027, 2, 5, 21))
    assert refused(lambda: w.scan(w.vols[0], w.p1, local(2027, 2, 5, 18),
                                  rules=ScanRules(geofence_mode="enforce"), accuracy=10_000.5)) == "no_location"


def test_what_stays_a_422():
    assert check_location(31.0, 121.5, 10_001) == (None, None, None)
    assert check_location(31.0, 121.5, -3) == (None, None, None)
    assert check_location(31.0, 121.5, 10_000) == (31.0, 121.5, 10_000)
    for lat, lon, acc in ((95, 121.5, 5), (31, 181, 5), (31, 121.5, float("nan")), (31, 121.5, float("inf")),
                          (31, 121.5, "20"), (float("nan"), 121.5, None), (31.0, None, None)):
        with pytest.raises(Exception) as exc:
            check_location(lat, lon, acc)
        assert exc.value.code == "bad_location", (lat, lon, acc)
