"""The satisfaction survey on real phone screens: the score is indicator 14, so an older volunteer
must pick the score they mean by tapping the words, on a small Android, a Pixel 7 and an iPhone SE."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from extensions import db
from models import SurveyAnswer, Volunteer
from services.signin import issue_login_link
from services.surveys import create_round
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import MovableClock, live_server

PHONES = {
    "android-360": {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 2},
    "pixel-7": {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625},
    "iphone-se": {"viewport": {"width": 375, "height": 667}, "device_scale_factor": 2},
}


@pytest.mark.parametrize("phone", sorted(PHONES))
@pytest.mark.parametrize("locale, label", [("zh-CN", "满意"), ("en", "Satisfied")])
def test_tapping_the_words_of_a_score_chooses_that_score(app, phone, locale, label):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    app.config["CLOCK"] = MovableClock(datetime(2026, 11, 29, 4, 0, tzinfo=timezone.utc))
    try:
        with live_server(app) as base:
            with app.app_context():
                vol = Volunteer(name="钱七", phone="13900000007", vest_no="PJ-0007", joined_on=date(2026, 1, 1))
                db.session.add(vol)
                db.session.flush()
                survey = create_round(db.session, "2026 年度满意度调查",
                                      opens_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
                db.session.commit()
                link = issue_login_link(db.session, vol.id, base_url=base, created_by="test").url
                vol_id, round_id = vol.id, survey.id

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                context = browser.new_context(is_mobile=True, has_touch=True, locale=locale,
                                              extra_http_headers={"Accept-Language": locale},
                                              **PHONES[phone])
                page = context.new_page()
                page.goto(link)
                page.locator("form button[type=submit]").click()
                page.wait_for_url(base + "/me")
                page.goto(f"{base}/me/survey/{round_id}")

                rows = page.locator("label.choice")
                assert rows.count() == 5
                for i in range(5):
                    row = rows.nth(i).bounding_box()
                    circle = rows.nth(i).locator("input").bounding_box()
                    assert row["height"] >= 48, (phone, i, row)
                    # the circle sits inside its row, beside the words, not on a line of its own
                    assert row["y"] <= circle["y"] and circle["y"] + circle["height"] <= row["y"] + row["height"]
                    assert circle["width"] >= 20
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONES[phone]["viewport"]["width"]

                # tap the words, not the circle
                page.get_by_text(f"4 · {label}", exact=True).tap()
                assert page.locator("input[name=score][value='4']").is_checked()
                chosen = rows.nth(1)
                assert chosen.evaluate("el => getComputedStyle(el).fontWeight") in ("600", "700")
                page.locator("form button[type=submit]").click()
                page.wait_for_load_state()
                browser.close()
    finally:
        app.config.pop("CLOCK", None)

    with app.app_context():
        answer = db.session.query(SurveyAnswer).filter_by(volunteer_id=vol_id, round_id=round_id).one()
        assert answer.score == 4 and answer.channel == "web"
