"""Passwordless sign-in rules, with a fixed clock."""
from datetime import date, timedelta

import pytest

from models import Device, PatrolPoint, Volunteer
from services.clock import fixed_clock
from services.errors import DomainError
from services.qr import resolve_point_token, rotate_point_key, scan_url
from services.settings import SELF_SERVICE_SIGNIN, set_setting
from services.signin import (card_url, confirm_login_link, device_volunteer, issue_login_link, peek_login_link,
                             resolve_card, revoke_card, revoke_device, self_service_sign_in, sign_in_with_card)
from services.tokens import CARD, POSTER, CodeSigner
from tests.conftest import utc

NOW = utc(2026, 11, 25, 10, 0)
SIGNER = CodeSigner("test-secret-key")


@pytest.fixture
def vol(session):
    v = Volunteer(name="张三", phone="13900000001", vest_no="PJ-0007", team="塘口居委", joined_on=date(2026, 1, 1))
    session.add(v)
    session.commit()
    return v


def _secret(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_signer_refuses_tampering_and_cross_purpose_codes():
    code = SIGNER.sign(POSTER, 12, 3)
    assert SIGNER.verify(POSTER, code).object_id == 12
    for bad in ["", "12.3", "x.3.abc", code[:-1] + ("A" if code[-1] != "A" else "B"), "13.3." + code.split(".")[2],
                "12.4." + code.split(".")[2]]:
        with pytest.raises(DomainError) as exc:
            SIGNER.verify(POSTER, bad)
        assert exc.value.code == "bad_token"
    with pytest.raises(DomainError):
        SIGNER.verify(CARD, code)
    with pytest.raises(DomainError):
        CodeSigner("another-key").verify(POSTER, code)


def test_point_token_revoked_by_rotation(session):
    p = PatrolPoint(code="P1", name="一号点", radius_m=100)
    session.add(p)
    session.commit()
    url = scan_url("http://x", SIGNER, p)
    token = _secret(url)
    assert resolve_point_token(session, SIGNER, token).code == "P1"
    rotate_point_key(session, "P1")
    with pytest.raises(DomainError) as exc:
        resolve_point_token(session, SIGNER, token)
    assert exc.value.code == "point_revoked"
    assert resolve_point_token(session, SIGNER, _secret(scan_url("http://x", SIGNER, p))).key_version == 2
    p.active = False
    session.commit()
    with pytest.raises(DomainError) as exc:
        resolve_point_token(session, SIGNER, _secret(scan_url("http://x", SIGNER, p)))
    assert exc.value.code == "point_inactive"


def test_login_link_survives_peeks_and_is_used_once(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    secret = _secret(issued.url)
    for _ in range(3):
        assert peek_login_link(session, secret, clock=fixed_clock(NOW)).state == "valid"
    signed = confirm_login_link(session, secret, user_agent="Phone", clock=fixed_clock(NOW))
    assert signed.volunteer_id == vol.id
    assert peek_login_link(session, secret, clock=fixed_clock(NOW)).state == "used"
    with pytest.raises(DomainError) as exc:
        confirm_login_link(session, secret, clock=fixed_clock(NOW))
    assert exc.value.code == "link_used"
    assert session.query(Device).count() == 1


def test_login_link_expires_after_seven_days(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    later = fixed_clock(NOW + timedelta(days=7, seconds=1))
    assert peek_login_link(session, _secret(issued.url), clock=later).state == "expired"
    with pytest.raises(DomainError) as exc:
        confirm_login_link(session, _secret(issued.url), clock=later)
    assert exc.value.code == "link_expired"
    with pytest.raises(DomainError) as exc:
        confirm_login_link(session, "not-a-link", clock=later)
    assert exc.value.code == "link_invalid"


def test_device_is_valid_until_revoked_not_until_a_date(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    signed = confirm_login_link(session, _secret(issued.url), clock=fixed_clock(NOW))
    years_later = fixed_clock(NOW + timedelta(days=3 * 365))
    who = device_volunteer(session, signed.device_secret, clock=years_later)
    assert who.id == vol.id and who.device_id == signed.device_id
    assert session.get(Device, signed.device_id).last_seen_at == NOW + timedelta(days=3 * 365)
    revoke_device(session, signed.device_id, by="user:1")
    assert device_volunteer(session, signed.device_secret, clock=years_later) is None
    assert device_volunteer(session, "forged", clock=years_later) is None


def test_withdrawn_volunteer_cannot_get_links_or_use_devices(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    signed = confirm_login_link(session, _secret(issued.url), clock=fixed_clock(NOW))
    vol.status, vol.withdrawn_on = "withdrawn", date(2026, 11, 1)
    session.commit()
    assert device_volunteer(session, signed.device_secret, clock=fixed_clock(NOW)) is None
    with pytest.raises(DomainError) as exc:
        issue_login_link(session, vol.id, base_url="http://x", created_by="test")
    assert exc.value.code == "volunteer_withdrawn"


def test_card_signs_in_many_phones_until_revoked(session, vol):
    code = _secret(card_url("http://x", SIGNER, vol))
    first = sign_in_with_card(session, SIGNER, code, user_agent="A")
    second = sign_in_with_card(session, SIGNER, code, user_agent="B")
    assert first.device_id != second.device_id
    assert {d.method for d in session.query(Device)} == {"card"}
    revoke_card(session, vol.id)
    with pytest.raises(DomainError) as exc:
        resolve_card(session, SIGNER, code)
    assert exc.value.code == "card_revoked"
    assert resolve_card(session, SIGNER, _secret(card_url("http://x", SIGNER, vol))).id == vol.id


def test_self_service_sign_in(session, vol):
    signed = self_service_sign_in(session, "+86 139 0000 0001", "pj-0007")
    assert signed.volunteer_id == vol.id
    assert session.get(Device, signed.device_id).method == "self_service"
    for phone, vest in [("13900000001", "PJ-0008"), ("13900000002", "PJ-0007"), ("junk", "x")]:
        with pytest.raises(DomainError) as exc:
            self_service_sign_in(session, phone, vest)
        assert exc.value.code == "signin_failed"
    set_setting(session, SELF_SERVICE_SIGNIN, "0", by="admin")
    with pytest.raises(DomainError) as exc:
        self_service_sign_in(session, "13900000001", "PJ-0007")
    assert exc.value.code == "self_service_disabled"
