"""An indicator page that is still counting the office's change reloads itself every few seconds
(static/js/reload.js, `<meta name="pv-reload-after">`), but never under a coordinator's fingers: a
plain refresh dropped a half-typed filter."""
from __future__ import annotations

from pathlib import Path

from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_waits_while_a_field_is_being_filled_in_and_reloads_after():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    script = (ROOT / "static/js/reload.js").read_text(encoding="utf-8")
    html = ('<!doctype html><html><head><meta name="pv-reload-after" content="1"></head><body>'
            '<form><input id="team" name="team" value=""><select id="sort" name="sort"><option value="">-</option>'
            '<option value="1">1</option></select></form><script>' + script + '</script></body></html>')
    loads: list[int] = []

    def serve(route):
        loads.append(1)
        route.fulfill(body=html, content_type="text/html; charset=utf-8")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.route("http://pingan.test/coord/programme/", serve)
        page.goto("http://pingan.test/coord/programme/")
        page.wait_for_timeout(2500)
        assert len(loads) >= 2                      # nobody typing: it reloads by itself
        page.fill("#team", "塘口")                   # typing (focused, changed)
        before = len(loads)
        page.wait_for_timeout(2500)
        assert len(loads) == before and page.input_value("#team") == "塘口"
        page.evaluate("document.activeElement.blur()")   # looked away, but the text is still there
        page.wait_for_timeout(2500)
        assert len(loads) == before and page.input_value("#team") == "塘口"
        page.select_option("#sort", "1")
        page.fill("#team", "")
        page.evaluate("document.activeElement.blur()")
        page.wait_for_timeout(2500)
        assert len(loads) == before                 # a changed sort is kept too
        page.select_option("#sort", "")
        page.evaluate("document.activeElement.blur()")
        page.wait_for_timeout(2500)
        assert len(loads) > before                  # back as it was: the reloads resume
        browser.close()
