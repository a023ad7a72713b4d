"""WeCom (企业微信) group robots, one per team (居委).

A team notice is posted once to the team's group as text, beside the web inbox, instead of an SMS
to every member. The webhook URL is a secret (whoever has it can post to the group): it is stored
encrypted with the data key and shown masked. It is accepted only under
`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`, so the field cannot aim the sender at an
internal address; `WECOM_WEBHOOK_BASE` moves that base for tests only.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.channels import TeamRobot
from services.errors import DomainError
from services.i18n import _
from services.pii import PersonalDataCipher

WECOM_BASE = "https://qyapi.weixin.qq.com/"
WEBHOOK_PATH = "cgi-bin/webhook/send"
MAX_TEXT_BYTES = 2048
PER_MINUTE = 20   # the robot's documented limit


def validate_webhook(url: str, *, base: str = WECOM_BASE) -> str:
    url = (url or "").strip()
    base = base.rstrip("/") + "/"
    parts = urlsplit(url)
    key = parse_qs(parts.query).get("key", [""])[0]
    if (not url.startswith(base + WEBHOOK_PATH + "?") or parts.fragment or "@" in parts.netloc
            or not key or len(key) > 64 or not all(c.isalnum() or c == "-" for c in key)):
        raise DomainError("bad_webhook", _("群机器人地址必须是 %(b)s%(p)s?key=… 形式的企业微信地址", b=base, p=WEBHOOK_PATH))
    return url


def mask_webhook(url: str) -> str:
    key = parse_qs(urlsplit(url).query).get("key", [""])[0]
    return url.split("?")[0] + "?key=" + (key[:4] + "…" + key[-4:] if len(key) > 8 else "…")


def set_team_robot(session: Session, cipher: PersonalDataCipher, *, team: str, url: str, by: str | None,
                   base: str = WECOM_BASE) -> None:
    team = (team or "").strip()
    if not team:
        raise DomainError("required", _("请选择居委"))
    url = validate_webhook(url, base=base)
    row = session.scalar(select(TeamRobot).where(TeamRobot.team == team))
    if row is None:
        row = TeamRobot(team=team)
        session.add(row)
    row.webhook_enc, row.webhook_masked, row.updated_by = cipher.encrypt(url), mask_webhook(url), by
    session.commit()


def remove_team_robot(session: Session, team: str) -> None:
    row = session.scalar(select(TeamRobot).where(TeamRobot.team == team))
    if row is not None:
        session.delete(row)
        session.commit()


def team_robot_ready(session: Session, team: str) -> bool:
    return session.scalar(select(TeamRobot.id).where(TeamRobot.team == team)) is not None


@dataclass(frozen=True)
class RobotView:
    team: str
    masked: str


def team_robots(session: Session) -> list[RobotView]:
    return [RobotView(r.team, r.webhook_masked) for r in session.scalars(select(TeamRobot).order_by(TeamRobot.team))]


def webhook_url(session: Session, cipher: PersonalDataCipher, team: str) -> str | None:
    row = session.scalar(select(TeamRobot).where(TeamRobot.team == team))
    return cipher.decrypt(row.webhook_enc) if row is not None else None


def clip_bytes(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """Text within the robot's byte limit (UTF-8), cut on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode("utf-8", errors="ignore") + "…"
