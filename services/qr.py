"""QR codes for patrol points and their scan URLs."""
from __future__ import annotations

import io
from dataclasses import dataclass

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.point import PatrolPoint
from services.errors import DomainError
from services.i18n import _
from services.tokens import POSTER, CodeSigner


def point_token(signer: CodeSigner, point: PatrolPoint) -> str:
    return signer.sign(POSTER, point.id, point.key_version)


def scan_url(base_url: str, signer: CodeSigner, point: PatrolPoint) -> str:
    return f"{base_url.rstrip('/')}/p/{point_token(signer, point)}"


def resolve_point_token(session: Session, signer: CodeSigner, token: str) -> PatrolPoint:
    """The patrol point a scanned token names, or a `DomainError` saying why not.

    Codes: `bad_token` (unsigned, guessed, altered, or no such point), `point_revoked` (the poster
    was printed before the point's key was rotated), `point_inactive`.
    """
    signed = signer.verify(POSTER, token)
    point = session.get(PatrolPoint, signed.object_id)
    if point is None:
        raise DomainError("bad_token", _("二维码无效：不是平安马甲签发的二维码"))
    if signed.version != point.key_version:
        raise DomainError("point_revoked", _("此二维码已作废（点位“%(name)s”已更换新海报），请扫描现场最新张贴的二维码",
                                             name=point.name))
    if not point.active:
        raise DomainError("point_inactive", _("点位“%(name)s”已停用", name=point.name))
    return point


def qr_png(data: str, *, box_size: int = 10, border: int = 4) -> bytes:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    qr.add_data(data)
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR modules, for drawing as vectors in a PDF (crisp at any print size)."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    qr.add_data(data)
    qr.make(fit=True)
    return qr.get_matrix()


@dataclass(frozen=True)
class RotatedKey:
    code: str
    key_version: int


def rotate_point_key(session: Session, code: str) -> RotatedKey:
    """Revoke every printed poster of a point (a leaked or stolen poster): print a new one after."""
    point = session.scalar(select(PatrolPoint).where(PatrolPoint.code == code))
    if point is None:
        raise DomainError("not_found", _("点位“%(c)s”不存在", c=code))
    point.key_version += 1
    session.commit()
    return RotatedKey(point.code, point.key_version)
