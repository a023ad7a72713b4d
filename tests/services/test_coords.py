"""Coordinate conversion against published WGS-84 / GCJ-02 / BD-09 pairs."""
import pytest

from services.coords import (bd09_to_gcj02, distance_m, gcj02_to_bd09, gcj02_to_wgs84, to_wgs84,
                             wgs84_to_gcj02)
from services.errors import DomainError

# (WGS-84 lat, lon, GCJ-02 lat, lon): the reference pairs used by the eviltransform libraries.
PAIRS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),   # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),   # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),   # Beijing
]


@pytest.mark.parametrize("wlat,wlon,glat,glon", PAIRS)
def test_forward_transform_matches_reference(wlat, wlon, glat, glon):
    lat, lon = wgs84_to_gcj02(wlat, wlon)
    assert distance_m(lat, lon, glat, glon) < 0.01


@pytest.mark.parametrize("wlat,wlon,glat,glon", PAIRS)
def test_gcj02_input_is_stored_within_a_metre_of_wgs84(wlat, wlon, glat, glon):
    lat, lon = to_wgs84(glat, glon, "gcj02")
    assert distance_m(lat, lon, wlat, wlon) < 1.0
    # and the uncorrected offset is hundreds of metres, i.e. the test can fail
    assert distance_m(glat, glon, wlat, wlon) > 100


@pytest.mark.parametrize("wlat,wlon,glat,glon", PAIRS)
def test_bd09_input_is_converted(wlat, wlon, glat, glon):
    blat, blon = gcj02_to_bd09(glat, glon)
    lat, lon = to_wgs84(blat, blon, "bd09")
    assert distance_m(lat, lon, wlat, wlon) < 1.0
    assert distance_m(blat, blon, wlat, wlon) > 300


def test_gcj_bd_reference_pair():
    # gcoord's published pair: GCJ-02 (45, 123) <-> BD-09 (45.00636899, 123.00636499)
    assert distance_m(*gcj02_to_bd09(45.0, 123.0), 45.00636899, 123.00636499) < 0.05


def test_outside_china_is_left_alone():
    assert gcj02_to_wgs84(51.5, -0.12) == (51.5, -0.12)


def test_bd_to_gcj_shape():
    lat, lon = bd09_to_gcj02(45.00636899, 123.00636499)
    assert abs(lat - 45) < 1e-4 and abs(lon - 123) < 1e-4


def test_unknown_system_is_an_error():
    with pytest.raises(DomainError) as exc:
        to_wgs84(31.0, 121.0, "utm")
    assert exc.value.code == "coords_unknown"


def test_distance_is_sane():
    # one degree of latitude is about 111 km
    assert 110_000 < distance_m(31.0, 121.0, 32.0, 121.0) < 112_000
