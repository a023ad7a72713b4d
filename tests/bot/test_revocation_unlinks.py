"""Revoking a card or a phone unlinks the Telegram chat linked from it (review item 3): otherwise
the bot's /login keeps handing fresh sign-in links to whoever holds the chat."""
from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from extensions import db
from keys import code_signer
from models import ChatLink, Device, Volunteer
from services.messaging import chat_person
from services.settings import TELEGRAM_BOT_USERNAME, set_setting
from services.signin import card_url
from tests.bot.test_handlers import CHAT, BotHarness, _message
from tests.conftest import csrf_from


def _volunteer(app) -> int:
    with app.app_context():
        v = Volunteer(name="孙八", phone="13900000008", vest_no="PJ-0008", team="丰顺居委", joined_on=date(2026, 1, 1))
        db.session.add(v)
        set_setting(db.session, TELEGRAM_BOT_USERNAME, "pingan_test_bot", by="test")
        db.session.commit()
        return v.id


def _card_sign_in_and_link(app, vol_id: int) -> str:
    """A phone signs in with the printed card and asks for a Telegram link; returns the token."""
    phone = app.test_client()
    with app.app_context():
        path = card_url("http://pingan.test", code_signer(), db.session.get(Volunteer, vol_id)).replace(
            "http://pingan.test", "")
    assert phone.post(path, data={"csrf_token": csrf_from(phone, path)}).status_code == 302
    page = phone.post("/me/telegram", data={"csrf_token": csrf_from(phone, "/me")}).get_data(as_text=True)
    return re.search(r"t\.me/pingan_test_bot\?start=([\w-]+)", page).group(1)


def test_revoking_the_card_unlinks_the_chat_and_the_bot_refuses_login(app, client, auth):
    vol_id = _volunteer(app)
    token = _card_sign_in_and_link(app, vol_id)
    harness = BotHarness(app)
    assert "孙八，您好" in harness.feed(_message(f"/start {token}")).texts()[-1]
    with app.app_context():
        link = db.session.scalar(select(ChatLink).where(ChatLink.unlinked_at.is_(None)))
        assert link.device_id == db.session.scalar(select(Device.id).where(Device.volunteer_id == vol_id))
    auth.login()
    detail = f"/coord/volunteers/{vol_id}"
    resp = client.post(f"{detail}/card/revoke", data={"csrf_token": csrf_from(client, detail)}, follow_redirects=True)
    assert "Telegram 也已解除绑定" in resp.get_data(as_text=True)
    with app.app_context():
        assert chat_person(db.session, CHAT) is None
    req = BotHarness(app).feed(_message("/login", message_id=2))
    assert "/login/" not in req.texts()[-1] and "请先绑定" in req.texts()[-1]


def test_revoking_the_phone_that_linked_the_chat_unlinks_it(app, client, auth):
    vol_id = _volunteer(app)
    BotHarness(app).feed(_message(f"/start {_card_sign_in_and_link(app, vol_id)}"))
    with app.app_context():
        device_id = db.session.scalar(select(Device.id).where(Device.volunteer_id == vol_id))
    auth.login()
    detail = f"/coord/volunteers/{vol_id}"
    resp = client.post(f"{detail}/devices/{device_id}/revoke", data={"csrf_token": csrf_from(client, detail)},
                       follow_redirects=True)
    assert "Telegram 也已解除绑定" in resp.get_data(as_text=True)
    with app.app_context():
        assert chat_person(db.session, CHAT) is None


def test_revoking_another_phone_keeps_the_chat_and_revoke_all_always_unlinks(app):
    from services.signin import issue_login_link, revoke_all_devices, revoke_device

    vol_id = _volunteer(app)
    BotHarness(app).feed(_message(f"/start {_card_sign_in_and_link(app, vol_id)}"))
    other = app.test_client()
    with app.app_context():
        secret = issue_login_link(db.session, vol_id, base_url="http://pingan.test", created_by="t").url.rsplit("/", 1)[1]
    other.post(f"/login/{secret}", data={"csrf_token": csrf_from(other, f"/login/{secret}")})
    with app.app_context():
        linked_from = db.session.scalar(select(ChatLink.device_id))
        second = db.session.scalar(select(Device.id).where(Device.id != linked_from))
        assert revoke_device(db.session, second, by="test") == 0
        assert chat_person(db.session, CHAT) is not None
        db.session.execute(ChatLink.__table__.update().values(device_id=None))  # linked before phones were recorded
        db.session.commit()
        revoke_all_devices(db.session, vol_id, by="test")
        assert chat_person(db.session, CHAT) is None
