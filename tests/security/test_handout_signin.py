"""A 居委 card hand-out on one Wi-Fi (review item 4): the per-address limiter counts only failed
sign-ins, so thirty volunteers with their own valid cards all get in, while guessing is still
limited."""
from __future__ import annotations

from datetime import date

from extensions import db
from keys import code_signer
from models import Device, Volunteer
from services.settings import SELF_SERVICE_SIGNIN, set_setting
from services.signin import card_url, issue_login_link, issue_pin
from tests.conftest import csrf_from

WIFI = {"REMOTE_ADDR": "10.8.0.7"}


def _volunteers(app, n: int) -> list[int]:
    with app.app_context():
        vols = [Volunteer(name=f"志愿者{i}", phone=f"139000{i:05d}", vest_no=f"PJ-{i:04d}", joined_on=date(2026, 1, 1))
                for i in range(n)]
        db.session.add_all(vols)
        db.session.commit()
        return [v.id for v in vols]


def _card_path(app, vol_id: int) -> str:
    with app.app_context():
        return card_url("http://pingan.test", code_signer(), db.session.get(Volunteer, vol_id)).replace(
            "http://pingan.test", "")


def test_thirty_phones_with_their_own_cards_sign_in_from_one_address(app):
    ids = _volunteers(app, 30)
    for vol_id in ids:
        phone = app.test_client()
        path = _card_path(app, vol_id)
        token = csrf_from(phone, path)
        resp = phone.post(path, data={"csrf_token": token}, environ_base=WIFI)
        assert resp.status_code == 302, (vol_id, resp.status_code)
    with app.app_context():
        assert db.session.query(Device).count() == 30


def test_thirty_links_and_pins_from_one_address_and_failures_still_limited(app):
    ids = _volunteers(app, 30)
    with app.app_context():
        set_setting(db.session, SELF_SERVICE_SIGNIN, "1", by="test")
        secrets = [issue_login_link(db.session, i, base_url="http://pingan.test", created_by="t").url.rsplit("/", 1)[1]
                   for i in ids]
        pins = {i: issue_pin(db.session, i).pin for i in ids[:10]}
        phones = {i: db.session.get(Volunteer, i).phone for i in ids}
    for secret in secrets:
        phone = app.test_client()
        token = csrf_from(phone, f"/login/{secret}")
        assert phone.post(f"/login/{secret}", data={"csrf_token": token}, environ_base=WIFI).status_code == 302
    for vol_id, pin in pins.items():  # 10 PIN sign-ins in a minute: over "5 per minute" if successes counted
        phone = app.test_client()
        resp = phone.post("/signin", data={"csrf_token": csrf_from(phone, "/signin"), "phone": phones[vol_id],
                                           "pin": pin}, environ_base=WIFI)
        assert resp.status_code == 302
    # Failures are still counted: bad card codes from that address are refused with 429 after 20.
    guesser = app.test_client()
    card = _card_path(app, ids[0])[:-3]   # a guesser tries other codes (one code is also limited per card)
    codes = [guesser.post(f"{card}x{i:02d}", data={"csrf_token": csrf_from(guesser, "/signin")},
                          environ_base=WIFI).status_code for i in range(22)]
    assert 429 not in codes[:20] and codes[20:] == [429, 429]
    codes = [guesser.post("/signin", data={"csrf_token": csrf_from(guesser, "/signin"), "phone": phones[ids[20]],
                                           "pin": "000000"}, environ_base=WIFI).status_code for _ in range(6)]
    assert codes[5] == 429
