"""Opening the inbox does not mark messages read (issue 10, item 16)."""
from __future__ import annotations

import re

from sqlalchemy import select

from extensions import db
from models import Message, MessageRecipient
from tests.conftest import Auth, csrf_from
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import live_server


def _message(app, vid: int, title: str) -> int:
    with app.app_context():
        m = Message(kind="notice", title=title, body="集合地点改到社区中心")
        db.session.add(m)
        db.session.flush()
        db.session.add(MessageRecipient(message_id=m.id, volunteer_id=vid))
        db.session.commit()
        return m.id


def _read_at(app) -> dict[int, object]:
    with app.app_context():
        return dict(db.session.execute(select(MessageRecipient.message_id, MessageRecipient.read_at)).all())


def test_a_cross_site_get_or_a_forged_post_marks_nothing(app, client, auth):
    vid = auth.volunteer()
    first = _message(app, vid, "通知一")
    # A link on another site (top-level navigation: the SameSite=Lax device cookie is sent).
    for _ in range(3):
        page = client.get("/me/inbox", headers={"Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/"})
        assert page.status_code == 200 and "通知一" in page.get_data(as_text=True)
    assert _read_at(app)[first] is None
    # A cross-site form post has no CSRF token.
    forged = client.post("/me/inbox/read", data={"message_id": str(first)},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 400
    assert _read_at(app)[first] is None

    # The page's own POST marks what was shown, and only that: a newer message stays new.
    html = page.get_data(as_text=True)
    second = _message(app, vid, "通知二")
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    ids = re.findall(r'name="message_id" value="(\d+)"', html)
    assert ids == [str(first)]
    resp = client.post("/me/inbox/read", data={"csrf_token": token, "message_id": ids},
                       headers={"X-Requested-With": "fetch"})
    assert resp.status_code == 204
    reads = _read_at(app)
    assert reads[first] is not None and reads[second] is None


def test_another_volunteers_messages_cannot_be_marked(app, client, auth):
    auth.volunteer()
    other = app.test_client()
    other_vid = Auth(app, other).volunteer(name="李四", phone="13900000002", vest_no="PJ-0002")
    theirs = _message(app, other_vid, "别人的通知")
    token = csrf_from(client, "/me")
    client.post("/me/inbox/read", data={"csrf_token": token, "message_id": str(theirs)})
    assert _read_at(app)[theirs] is None


def test_the_page_marks_read_once_it_has_been_seen(app, auth):
    """In Chromium: the inbox's static script posts the CSRF-protected form after two seconds."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    phone = app.test_client()
    vid = Auth(app, phone).volunteer()
    mid = _message(app, vid, "通知一")
    secret = phone.get_cookie("pv_device").value
    with live_server(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        context = browser.new_context(locale="zh-CN")
        context.add_cookies([{"name": "pv_device", "value": secret, "url": base}])
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        with page.expect_response(lambda r: r.url.endswith("/me/inbox/read")) as posted:
            page.goto(base + "/me/inbox")
            assert page.is_visible("text=通知一")
        assert posted.value.status == 204
        page.wait_for_selector("form[data-mark-read-on-view]", state="detached")
        browser.close()
    assert _read_at(app)[mid] is not None
    assert not errors, errors
