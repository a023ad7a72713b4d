"""Volunteer pages say it plainly (issue 11 item 7): the inbox and /me agree on what is waiting; no
Chinese punctuation in English text; result and error pages use words and colour, never colour alone."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from babel.messages.pofile import read_po

from extensions import db
from models import Volunteer
from services.surveys import create_round
from tests.conftest import csrf_from

PO = Path(__file__).resolve().parents[2] / "translations" / "en" / "LC_MESSAGES" / "messages.po"
# CJK symbols and punctuation (、。「」《》【】 …) and full-width forms (，：；！？（）…); curly quotes
# and dashes are English punctuation too and are allowed.
CHINESE_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")


def test_no_chinese_punctuation_in_english_text():
    with PO.open("rb") as fh:
        catalogue = read_po(fh)
    found = []
    for msg in catalogue:
        if not msg.id:
            continue
        for text in (msg.string if isinstance(msg.string, tuple) else (msg.string,)):
            if text and CHINESE_PUNCTUATION.search(text):
                found.append(f"{msg.id!r} -> {text!r}")
    assert not found, "\n".join(found)


def test_a_survey_listed_on_me_is_waiting_in_the_inbox_too(app, client, auth):
    auth.volunteer()
    with app.app_context():
        # opened without sending a message (or the volunteer joined the programme after it was sent)
        r = create_round(db.session, "春节后", opens_at=datetime.now(timezone.utc) - timedelta(days=1))
    me = client.get("/me").get_data(as_text=True)
    inbox = client.get("/me/inbox").get_data(as_text=True)
    for page in (me, inbox):
        assert "满意度调查：春节后" in page and f"/me/survey/{r.id}" in page
    token = csrf_from(client, f"/me/survey/{r.id}")
    client.post(f"/me/survey/{r.id}", data={"csrf_token": token, "score": "4"})
    assert "去作答" not in client.get("/me/inbox").get_data(as_text=True)
    assert "已作答" in client.get("/me").get_data(as_text=True)


def test_a_survey_the_volunteer_is_not_asked_is_listed_nowhere(app, client, auth):
    vid = auth.volunteer()
    with app.app_context():
        create_round(db.session, "去年", opens_at=datetime(2025, 6, 1, tzinfo=timezone.utc))
        db.session.get(Volunteer, vid).joined_on = date(2026, 1, 1)  # joined after that round opened
        db.session.commit()
    assert "满意度调查：去年" not in client.get("/me").get_data(as_text=True)
    assert "满意度调查：去年" not in client.get("/me/inbox").get_data(as_text=True)


COLOURED = re.compile(r'<(\w+)[^>]*class="[^"]*\b(state-on|state-wait|state-bad|ok|bad|tick|refused)\b[^"]*"[^>]*>(.*?)</\1>',
                      re.S)


def _coloured_without_words(html: str) -> list[str]:
    """Elements whose colour carries meaning, with no word (Han or Latin letters) inside or beside."""
    out = []
    for tag, cls, inner in COLOURED.findall(html):
        text = re.sub(r"<[^>]+>", "", inner)
        if cls == "tick":  # the ✓ sits right above the heading that says it in words
            continue
        if not re.search(r"[\u4e00-\u9fffA-Za-z]", text):
            out.append(f"{tag}.{cls}: {text!r}")
    return out


def test_results_and_errors_say_it_in_words(app, client, auth):
    from tests.web.test_scan_pages import _post  # noqa: F401 (the scan pages' own helper)
    from models import Event, PatrolPoint, Shift
    from keys import code_signer
    from services.clock import from_local
    from services.qr import point_token
    from tests.live import MovableClock

    app.config["CLOCK"] = MovableClock(from_local(datetime(2027, 2, 5, 18, 2)))
    try:
        auth.volunteer()
        with app.app_context():
            event = Event(name="春节", starts_on=date(2027, 2, 5), ends_on=date(2027, 2, 20))
            point = PatrolPoint(code="PJ01", name="周浦塘桥路口", radius_m=150)
            db.session.add_all([event, point])
            db.session.flush()
            db.session.add(Shift(event_id=event.id, point_id=point.id, starts_at=from_local(datetime(2027, 2, 5, 18)),
                                 ends_at=from_local(datetime(2027, 2, 5, 21)), capacity=10))
            db.session.commit()
            with app.test_request_context():
                path = "/p/" + point_token(code_signer(), point)
        pages = {"scan": client.get(path).get_data(as_text=True)}
        pages["check-in"] = _post(client, path).get_data(as_text=True)
        assert "签到成功" in pages["check-in"]
        pages["scan, on patrol"] = client.get(path).get_data(as_text=True)
        pages["confirm"] = _post(client, path).get_data(as_text=True)
        pages["refused"] = client.get("/p/1.1.forged").get_data(as_text=True)
        pages["me"] = client.get("/me").get_data(as_text=True)
        for name, html in pages.items():
            assert not _coloured_without_words(html), (name, _coloured_without_words(html))
        assert "✗ 无法继续" in pages["refused"]
    finally:
        app.config.pop("CLOCK", None)
