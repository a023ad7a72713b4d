"""One-tap survey links for SMS: personal, single-purpose, valid while the round is open.

Why a keyed hash instead of a stored token: the link must be the same on a retried SMS and short
enough for one segment; `HMAC(SECRET_KEY, round, volunteer)` is both, and it signs the holder in
for answering that round only (no session, no other page).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.messaging import SurveyRound
from models.volunteer import Volunteer
from services.clock import Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _
from services.volunteers import withdrawal_in_effect


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _mac(secret: str, round_id: int, volunteer_id: int) -> str:
    digest = hmac.new(secret.encode(), f"survey-link:{round_id}:{volunteer_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


def survey_token(secret: str, round_id: int, volunteer_id: int) -> str:
    return f"{_b36(round_id)}-{_b36(volunteer_id)}-{_mac(secret, round_id, volunteer_id)}"


@dataclass(frozen=True)
class SurveyLink:
    round_id: int
    volunteer_id: int
    name: str
    question: str


def resolve_survey_token(session: Session, secret: str, token: str, *, clock: Clock = system_clock) -> SurveyLink:
    try:
        r36, v36, mac = (token or "").split("-")
        round_id, volunteer_id = int(r36, 36), int(v36, 36)
    except ValueError:
        raise DomainError("link_invalid", _("链接无效")) from None
    if not hmac.compare_digest(mac, _mac(secret, round_id, volunteer_id)):
        raise DomainError("link_invalid", _("链接无效"))
    r = session.get(SurveyRound, round_id)
    vol = session.get(Volunteer, volunteer_id)
    now = clock()
    # A withdrawal dated ahead keeps the link working until its date, as it keeps sign-in.
    if r is None or vol is None or withdrawal_in_effect(vol.status, vol.withdrawn_on, local_date(now)):
        raise DomainError("link_invalid", _("链接无效"))
    if r.closes_at is not None and r.closes_at <= now:
        raise DomainError("survey_closed", _("本轮调查已结束"))
    return SurveyLink(r.id, vol.id, r.name, r.question)
