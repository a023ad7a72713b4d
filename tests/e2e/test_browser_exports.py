"""A large export in a real browser at 360 px, under the app's real CSP: the link opens the
progress page, its script (static/js/exportjob.js) follows the job while the scheduler's worker
builds it, then the page shows the download link and the file reads back."""
from __future__ import annotations

import time
from datetime import date
from io import BytesIO

from openpyxl import load_workbook

from extensions import db
from services.export_jobs import export_dir, run_next
from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path
from tests.live import live_server
from services.users import create_user
from tests.services.test_indicators import Y, programme  # noqa: F401  (fixture)


def test_a_background_export_in_the_browser(app, session, programme, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    create_user(session, "coord", "password-123", "coordinator")
    before = app.config["EXPORT_SYNC_MAX_ROWS"]
    app.config["EXPORT_SYNC_MAX_ROWS"] = 3
    try:
        with live_server(app) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            context = browser.new_context(locale="zh-CN", accept_downloads=True, viewport={"width": 360, "height": 740},
                                          is_mobile=True, has_touch=True)
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(base + "/coord/login")
            page.fill("#username", "coord")
            page.fill("#password", "password-123")
            page.get_by_role("button", name="登录").click()
            page.wait_for_url(base + "/coord/")
            page.goto(base + f"/coord/programme/?year={Y}")
            page.get_by_role("link", name="签到明细").click()
            page.wait_for_url(f"{base}/coord/exports/*")
            assert page.locator("#export-status").inner_text() == "排队中"
            assert page.get_by_label("导出进度").count() == 1
            width = page.evaluate("Math.max(...[...document.querySelectorAll('main, .card')]"
                                  ".map(e => e.getBoundingClientRect().right))")
            assert width <= 361
            time.sleep(1.5)  # the script polls the status at least once while the job waits
            assert run_next(session, worker="test", directory=export_dir(app.config["INSTANCE_PATH"]),
                            today=date(Y + 1, 1, 10)) == "done"
            db.session.remove()
            link = page.get_by_role("link", name="下载")
            link.wait_for(timeout=15000)  # the script saw "done" and reloaded the page
            assert page.locator("#export-status").inner_text() == "已完成"
            with page.expect_download() as info:
                link.click()
            with open(info.value.path(), "rb") as fh:
                data = fh.read()
            rows = list(load_workbook(BytesIO(data))["签到记录"].iter_rows(values_only=True))
            assert len(rows) == 7 and info.value.suggested_filename == f"attendance-{Y}.xlsx"
            browser.close()
    finally:
        app.config["EXPORT_SYNC_MAX_ROWS"] = before
    assert problems == []
