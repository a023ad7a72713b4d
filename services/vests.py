"""Vest numbers as people type them.

A vest number is printed as, say, "PJ-0001"; on a street corner a team leader types "1", "0001",
"PJ0001" or "pj 0001". All of these must find the same volunteer, and a typed number that fits
two volunteers (two teams numbering from 1) must be refused rather than guessed.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Volunteer
from services.errors import DomainError
from services.i18n import _

_SEPARATORS = re.compile(r"[\s\-_·./#]+")
_SHAPE = re.compile(r"([A-Z]*)(\d+)")


def vest_key(raw: str | None) -> tuple[str, int] | None:
    """("PJ", 1) for "PJ-0001", "pj 0001", "ＰＪ０００１"; ("", 1) for "1" or "0001"; None otherwise."""
    if not raw:
        return None
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    match = _SHAPE.fullmatch(text)
    if not match:
        return None
    return match.group(1), int(match.group(2))


def volunteers_by_vest(session: Session, typed: str, *where: Any) -> list[Volunteer]:
    """Every volunteer whose vest number is the typed one, in any of the forms people type.

    A typed number without letters matches whatever prefix is printed; with letters, only that prefix.
    """
    typed = (typed or "").strip()
    if not typed:
        return []
    key = vest_key(typed)
    if key is None:
        return list(session.scalars(select(Volunteer).where(Volunteer.vest_no == typed, *where)))
    prefix, number = key
    # every stored form of the number ends in its digits, so the database narrows the candidates
    candidates = session.scalars(select(Volunteer).where(Volunteer.vest_no.like(f"%{number}"), *where))
    found = []
    for vol in candidates:
        stored = vest_key(vol.vest_no)
        if stored and stored[1] == number and (not prefix or stored[0] == prefix):
            found.append(vol)
    return found


def volunteer_by_vest(session: Session, typed: str, *where: Any) -> Volunteer | None:
    """The one volunteer with this vest number; refuses a number that fits several."""
    found = volunteers_by_vest(session, typed, *where)
    if len(found) > 1:
        raise DomainError("ambiguous_vest", _("马甲编号“%(v)s”对应多名志愿者（%(list)s），请输入完整编号或手机号",
                                             v=typed, list="、".join(sorted(v.vest_no or "" for v in found))))
    return found[0] if found else None
