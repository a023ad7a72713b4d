"""Acceptance: a poster PDF read back with poppler and a real QR decoder (zbar)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.factories import csv_bytes
from tests.system_deps import decode_qr as decode, needs_cjk_font, needs_poppler, needs_zbar
from services.imports import import_points



def _poster(runner, tmp_path: Path, code: str | None = "PJ01") -> Path:
    out = tmp_path / "poster.pdf"
    args = ["points", "poster"] + ([code] if code else []) + ["-o", str(out)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return out


def _decode_first_page(pdf: Path, tmp_path: Path) -> str:
    subprocess.run(["pdftoppm", "-r", "100", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    png = next(tmp_path.glob("page*.png"))
    with Image.open(png) as img:
        codes = decode(img)
    assert len(codes) == 1
    return codes[0].data.decode()


@pytest.fixture
def points(session):
    import_points(session, csv_bytes([["code", "name", "address"], ["PJ01", "浦锦路浦星公路路口", "东北角"],
                                      ["PJ02", "芦恒路浦秀路口", None]]), "p.csv")


@needs_poppler
@needs_zbar
@needs_cjk_font
def test_poster_has_chinese_name_embedded_cjk_font_and_a_decodable_signed_url(app, runner, client, points, tmp_path):
    pdf = _poster(runner, tmp_path)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "浦锦路浦星公路路口" in text and "签到" in text
    assert "同一个扫码工具" in text  # WeChat and the camera are two browsers: keep to one
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    cjk = [line for line in fonts.splitlines() if "WenQuanYi" in line or "PinganCJK" in line]
    assert cjk and all(" yes " in line for line in cjk), fonts  # embedded

    url = _decode_first_page(pdf, tmp_path)
    assert url.startswith(app.config["PUBLIC_BASE_URL"] + "/p/")
    path = url[len(app.config["PUBLIC_BASE_URL"]):]
    page = client.get(path)
    assert page.status_code == 200 and "浦锦路浦星公路路口" in page.get_data(as_text=True)

    token = path.rsplit("/", 1)[1]
    for i in range(len(token)):
        if token[i] == ".":
            continue
        swapped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        resp = client.get("/p/" + swapped)
        assert resp.status_code in (404, 410), (i, resp.status_code)
        assert "无法继续" in resp.get_data(as_text=True)

    assert runner.invoke(args=["points", "rotate", "PJ01"]).exit_code == 0
    revoked = client.get(path)
    assert revoked.status_code == 410
    assert "已作废" in revoked.get_data(as_text=True)


@needs_poppler
def test_all_points_poster_has_one_page_each(runner, points, tmp_path):
    pdf = _poster(runner, tmp_path, code=None)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+2$", info, re.M), info


@needs_zbar
def test_qr_png_decodes_to_the_scan_url(app, runner, points, tmp_path):
    out = tmp_path / "qr.png"
    assert runner.invoke(args=["points", "qr", "PJ02", "-o", str(out)]).exit_code == 0
    with Image.open(out) as img:
        assert decode(img)[0].data.decode().startswith("http://pingan.test/p/2.1.")


@needs_poppler
@needs_zbar
def test_cards_pdf_start_a_page_per_team_and_sign_in(app, runner, client, session, tmp_path):
    from tests.factories import roster_rows, xlsx_bytes
    from services.imports import import_volunteers
    from keys import data_cipher

    import_volunteers(session, xlsx_bytes(roster_rows(12)), "r.xlsx", cipher=data_cipher())
    out = tmp_path / "cards.pdf"
    assert runner.invoke(args=["volunteers", "cards", "-o", str(out)]).exit_code == 0
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+3$", info, re.M), info  # 3 teams of 4: a page each
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(out), str(tmp_path / "cards")], check=True)
    with Image.open(next(tmp_path.glob("cards*.png"))) as img:
        urls = sorted(c.data.decode() for c in decode(img))
    assert len(urls) == 4 and all(u.startswith("http://pingan.test/card/") for u in urls)
    path = urls[0][len("http://pingan.test"):]
    page = client.get(path)
    assert page.status_code == 200 and "确认登录" in page.get_data(as_text=True)
