"""Printable PDFs: A4 patrol-point posters and pages of volunteer cards.

A CJK TrueType font is embedded so the PDF prints right on any machine (reportlab cannot embed the
CFF-outline OpenType fonts of fonts-noto-cjk; WenQuanYi Zen Hei is TrueType). Without one, the
built-in CID font STSong-Light is used: it is not embedded, so the printer's viewer must supply it.
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from reportlab.lib.colors import HexColor, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from services.i18n import _
from services.qr import qr_matrix

log = logging.getLogger(__name__)

VEST_ORANGE = HexColor("#f26b1d")
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
FALLBACK_CID_FONT = "STSong-Light"


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register and return the name of a CJK font for reportlab (embedded TrueType if possible)."""
    candidates = [os.environ.get("CJK_FONT_PATH") or "", *CJK_FONT_CANDIDATES]
    for path in candidates:
        if path and os.path.exists(path):
            try:
                pdfmetrics.registerFont(TTFont("PinganCJK", path, subfontIndex=0))
                return "PinganCJK"
            except Exception as exc:  # a font reportlab cannot read: try the next one
                log.warning("CJK font %s unusable: %s", path, exc)
    log.warning("No CJK TrueType font found (install fonts-wqy-zenhei); falling back to the "
                "non-embedded CID font %s", FALLBACK_CID_FONT)
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_CID_FONT))
    return FALLBACK_CID_FONT


def _draw_qr(c: Canvas, data: str, x: float, y: float, size: float) -> None:
    """Draw a QR code as vector squares with its own white quiet zone (4 modules)."""
    matrix = qr_matrix(data)
    n = len(matrix)
    module = size / (n + 8)
    c.setFillColor(white)
    c.rect(x, y, size, size, stroke=0, fill=1)
    c.setFillColor(black)
    ox, oy = x + 4 * module, y + 4 * module
    for r, row in enumerate(matrix):
        for col, dark in enumerate(row):
            if dark:
                c.rect(ox + col * module, oy + (n - 1 - r) * module, module, module, stroke=0, fill=1)


def _fit_text(c: Canvas, text: str, font: str, max_size: float, max_width: float) -> float:
    size = max_size
    while size > 10 and pdfmetrics.stringWidth(text, font, size) > max_width:
        size -= 1
    return size


@dataclass(frozen=True)
class PosterItem:
    code: str
    name: str
    address: str | None
    url: str


def posters_pdf(items: Sequence[PosterItem], *, office: str = "浦锦街道平安办") -> bytes:
    """One A4 page per patrol point: name, QR (13 cm, scannable from well over 1 m), instructions."""
    font = cjk_font()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4)
    c.setTitle(_("平安马甲 巡逻点位二维码"))
    width, height = A4
    for item in items:
        c.setFillColor(VEST_ORANGE)
        c.rect(0, height - 34 * mm, width, 34 * mm, stroke=0, fill=1)
        c.setFillColor(white)
        c.setFont(font, 30)
        c.drawCentredString(width / 2, height - 22 * mm, _("平安马甲 · 巡逻签到点"))
        c.setFillColor(black)
        size = _fit_text(c, item.name, font, 40, width - 30 * mm)
        c.setFont(font, size)
        c.drawCentredString(width / 2, height - 56 * mm, item.name)
        c.setFont(font, 14)
        sub = _("点位编号 %(code)s", code=item.code) + (f"  ·  {item.address}" if item.address else "")
        c.setFont(font, _fit_text(c, sub, font, 14, width - 30 * mm))
        c.drawCentredString(width / 2, height - 66 * mm, sub)
        qr_size = 130 * mm
        _draw_qr(c, item.url, (width - qr_size) / 2, height - 72 * mm - qr_size, qr_size)
        steps = [
            _("1. 打开手机相机或微信“扫一扫”，扫描上方二维码"),
            _("2. 到岗时点“签到”，巡逻结束时再扫一次点“签退”"),
            _("3. 首次使用：请先用平安办发给您的登录链接或志愿者卡登录"),
            # WeChat's scanner and the camera open two browsers with separate sign-ins (issue 11)
            _("4. 每次都用同一个扫码工具（一直用微信或一直用相机），换了要重新登录"),
        ]
        y = height - 72 * mm - qr_size - 14 * mm
        c.setFont(font, 15)
        for step in steps:
            c.drawString(22 * mm, y, step)
            y -= 9 * mm
        c.setFont(font, 9)
        c.setFillColor(HexColor("#555555"))
        c.drawCentredString(width / 2, 14 * mm, f"{office} · {item.url}")
        c.showPage()
    c.save()
    return buf.getvalue()


@dataclass(frozen=True)
class CardItem:
    name: str
    team: str | None
    vest_no: str | None
    url: str
    pin: str | None = None  # a freshly issued sign-in PIN (only known at issue time; the server keeps a hash)


CARD_W, CARD_H = 85 * mm, 54 * mm


def cards_pdf(items: Iterable[CardItem], *, office: str = "浦锦街道平安办") -> bytes:
    """Volunteer cards, 2 × 5 per A4 page, a new page for every team (cut along the lines)."""
    font = cjk_font()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4)
    c.setTitle(_("平安马甲 志愿者卡"))
    width, height = A4
    margin_x = (width - 2 * CARD_W) / 2
    margin_y = (height - 5 * CARD_H) / 2
    slot = 0
    current_team: object = object()
    started = False
    for item in items:
        if item.team != current_team or slot == 10:
            if started:
                c.showPage()
            started = True
            slot = 0
            current_team = item.team
        col, row = slot % 2, slot // 2
        x = margin_x + col * CARD_W
        y = height - margin_y - (row + 1) * CARD_H
        c.setStrokeColor(HexColor("#bbbbbb"))
        c.setDash(2, 2)
        c.rect(x, y, CARD_W, CARD_H, stroke=1, fill=0)
        c.setDash()
        c.setFillColor(VEST_ORANGE)
        c.rect(x, y + CARD_H - 10 * mm, CARD_W, 10 * mm, stroke=0, fill=1)
        c.setFillColor(white)
        c.setFont(font, 11)
        c.drawString(x + 4 * mm, y + CARD_H - 7 * mm, _("平安马甲 · 志愿者卡"))
        c.setFillColor(black)
        c.setFont(font, _fit_text(c, item.name, font, 16, 40 * mm))
        c.drawString(x + 4 * mm, y + CARD_H - 19 * mm, item.name)
        c.setFont(font, 9)
        c.drawString(x + 4 * mm, y + CARD_H - 26 * mm, item.team or "")
        c.drawString(x + 4 * mm, y + CARD_H - 31 * mm, _("马甲编号 %(v)s", v=item.vest_no or "—"))
        if item.pin:
            c.setFont(font, 10)
            c.drawString(x + 4 * mm, y + CARD_H - 38 * mm, _("登录 PIN %(p)s", p=item.pin))
        c.setFont(font, 7)
        c.drawString(x + 4 * mm, y + 8 * mm, _("扫码登录，签到更方便"))
        c.drawString(x + 4 * mm, y + 4 * mm, _("请妥善保管，遗失请告知平安办"))
        _draw_qr(c, item.url, x + CARD_W - 41 * mm, y + 2 * mm, 39 * mm)
        slot += 1
    if not started:
        c.setFont(font, 14)
        c.drawString(30 * mm, height - 40 * mm, _("没有符合条件的志愿者"))
    c.showPage()
    c.save()
    return buf.getvalue()
