"""English is the second locale: every extracted string has an English translation with the same
placeholders, and pages and messages switch when a person chooses English."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)
from tests.web.test_night_pages import night  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[-+ #0-9.]*[sdf]|%%|%s")
METHODS = [("**.py", "python"), ("**.html", "jinja2")]


def _source_messages() -> set[tuple[str, str | None]]:
    """(msgid, context): a `pgettext('column', …)` header has its own entry beside the plain one."""
    found: set[tuple[str, str | None]] = set()
    for folder in ("cli", "services", "web", "bot", "scheduler", "templates"):
        for _file, _line, message, _comments, ctx in extract_from_dir(str(ROOT / folder), METHODS):
            found.add((message if isinstance(message, str) else message[0], ctx))
    return {(m, c) for m, c in found if m}


def test_every_message_has_an_english_translation_with_the_same_placeholders():
    with open(ROOT / "translations/en/LC_MESSAGES/messages.po", "rb") as fh:
        catalog = read_po(fh)
    missing, broken = [], []
    for msgid, context in sorted(_source_messages(), key=lambda mc: (mc[0], mc[1] or "")):
        entry = catalog.get(msgid, context=context)
        forms = entry.string if entry is not None and isinstance(entry.string, tuple) else (
            (entry.string,) if entry is not None else ())   # a plural (ngettext) entry has one per form
        if not forms or not all(forms):
            missing.append(msgid)
        elif any(sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(form)) for form in forms):
            broken.append(msgid)
    assert not missing, f"untranslated (run `make translations`): {missing[:10]}"
    assert not broken, broken[:10]


def test_the_compiled_catalogue_is_current():
    po = ROOT / "translations/en/LC_MESSAGES/messages.po"
    mo = ROOT / "translations/en/LC_MESSAGES/messages.mo"
    assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime - 1


def test_pages_switch_to_english_and_back(client):
    zh = client.get("/").get_data(as_text=True)
    assert "重大节点活动" in zh and 'lang="zh-CN"' in zh
    en = client.get("/?lang=en").get_data(as_text=True)
    assert "Key-date campaigns" in en and 'lang="en"' in en
    client.get("/lang/en")
    assert "Volunteer sign-in" in client.get("/signin").get_data(as_text=True)
    client.get("/lang/zh")
    assert "志愿者登录" in client.get("/signin").get_data(as_text=True)


def test_english_column_headers_name_one_thing(client, auth, session, night):  # noqa: F811
    """Chinese has no plural: the menu's "Volunteers" is a column's "Volunteer" (one per row)."""
    from flask_babel import refresh

    auth.login()
    client.get("/lang/en")
    refresh()   # the fixture's app context is reused by the requests: forget the locale it cached
    heads = re.findall(r"<th>([^<]*)</th>", client.get("/coord/board/").get_data(as_text=True))
    assert "Volunteer" in heads and "Point" in heads and "Volunteers" not in heads and "Points" not in heads
    events = client.get("/coord/events/").get_data(as_text=True)
    assert "<th>Event</th>" in events and ">Volunteers</a>" in events   # the menu keeps its plural


def test_service_messages_follow_the_locale(client):
    zh = client.get("/p/1.1.forged").get_data(as_text=True)
    assert "二维码无效" in zh
    en = client.get("/p/1.1.forged?lang=en").get_data(as_text=True)
    assert "Invalid QR code" in en
    api = client.post("/api/v1/scans?lang=en", json={"token": "x"})
    assert api.get_json()["error"]["message"].startswith("This phone is not signed in")


def test_the_browser_language_is_followed_until_the_person_chooses(client):
    """An English phone gets English pages marked lang="en"; a browser asking for a language we do
    not have gets Chinese; the switch in the header wins over the browser and is remembered."""
    en = client.get("/signin", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert "Volunteer sign-in" in en and '<html lang="en">' in en
    zh = client.get("/signin", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert "志愿者登录" in zh and '<html lang="zh-CN">' in zh
    fr = client.get("/signin", headers={"Accept-Language": "fr-FR,de;q=0.8"}).get_data(as_text=True)
    assert "志愿者登录" in fr and '<html lang="zh-CN">' in fr
    client.get("/lang/zh")
    chosen = client.get("/signin", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "志愿者登录" in chosen and '<html lang="zh-CN">' in chosen


def test_the_indicator_pages_in_english_say_the_rows_in_english(client, auth, session, programme):  # noqa: F811
    """The year's report is computed once, in Chinese, and shared; the English pages must not show
    "志愿者工作时长 · 人均 4.7 小时". Only what people typed (a survey round's name) stays as typed."""
    import re as _re

    from sqlalchemy import select

    from models import ProgrammeYear, SurveyRound

    from flask_babel import refresh

    typed = set(session.scalars(select(SurveyRound.name)))
    for year in session.scalars(select(ProgrammeYear)):   # the office's own assessments, as written
        typed |= {t for t in (year.assessment_safety, year.assessment_mechanism, year.assessed_by) if t}
    auth.login(role="admin", username="en-office")
    client.set_cookie("lang", "en")
    refresh()   # the fixture's app context is reused by the requests: forget the locale it cached
    han = _re.compile(r"[\u4e00-\u9fff]")
    page = client.get(f"/coord/programme/?year={Y}").get_data(as_text=True)
    cards = _re.findall(r'<a class="indicator status-[a-z]+".*?</a>', page, flags=_re.S)
    assert len(cards) == 14
    for card in cards:
        text = _re.sub(r"<[^>]+>", " ", card)
        for name in typed:
            text = text.replace(name, "")
        assert not han.search(text), text
    assert "Volunteers&#39; patrol hours" in page and "≥ 6 hours" in page
    for number in (2, 6, 10, 13):
        detail = client.get(f"/coord/programme/indicator/{number}?year={Y}").get_data(as_text=True)
        head = detail.split('<div class="card status-', 1)[1].split("</div>", 1)[0]
        assert not han.search(_re.sub(r"<[^>]+>", " ", head)), head
    client.set_cookie("lang", "zh")
    refresh()
    assert "志愿者工作时长" in client.get(f"/coord/programme/?year={Y}").get_data(as_text=True)


def test_what_an_english_coordinator_sends_is_written_in_chinese(client, auth, session, night):  # noqa: F811
    """The coordinator reads the pages in English; the volunteer's nudge, the notice's signature and
    the labels stored for every coordinator stay in the programme's language."""
    from flask_babel import refresh
    from sqlalchemy import select

    from models import Message
    from tests.conftest import csrf_from

    auth.login(username="en-coord")
    client.set_cookie("lang", "en")
    refresh()   # the fixture's app context is reused by the requests: forget the locale it cached
    token = csrf_from(client, "/coord/board/")
    client.post(f"/coord/board/remind/{night['shift_id']}/{night['away']}", data={"csrf_token": token})
    resp = client.post("/coord/notices/send", data={"csrf_token": token, "text": "今晚 19:00 集合", "audience": "all",
                                                    "nonce": "en-1"})
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'lang="en"' in page   # the coordinator's pages were English throughout
    nudge = session.scalars(select(Message).where(Message.kind == "reminder")).one()
    assert nudge.title == "到岗提醒" and nudge.body.startswith("您今晚 18:00") and nudge.audience == "缺岗提醒"
    notice = session.scalars(select(Message).where(Message.kind == "notice")).one()
    assert notice.title == "巡逻通知" and notice.body.endswith("—— 平安办 en-coord") and notice.audience == "全体在册志愿者"
