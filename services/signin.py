"""Passwordless sign-in for volunteers' phones.

Three ways in, all ending in a `Device` (a random secret in a long-lived cookie, only its hash
stored), valid until a coordinator revokes it:
- a personal one-time link from a coordinator: opening it (GET) changes nothing, because chat apps
  and link previewers open URLs by themselves; only the confirming POST uses it up;
- the printed volunteer card's QR: long-lived, revocable by bumping the volunteer's card version;
- phone number + vest number, when an admin allows it (rate limited by the web layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from models.signin import METHOD_CARD, METHOD_LINK, METHOD_SELF_SERVICE, Device, LoginLink
from models.volunteer import STATUS_ACTIVE, Volunteer
from services.clock import Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _
from services.phones import normalise_phone
from services.settings import SELF_SERVICE_SIGNIN, get_bool
from services.tokens import CARD, CodeSigner, hash_secret, new_secret
from services.volunteers import withdrawal_in_effect

DEFAULT_LINK_DAYS = 7
LAST_SEEN_GRANULARITY = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedLink:
    url: str
    expires_at: datetime
    volunteer_id: int
    volunteer_name: str


@dataclass(frozen=True)
class LinkView:
    volunteer_name: str
    state: str  # "valid" | "used" | "expired"
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    device_secret: str
    device_id: int
    volunteer_id: int
    volunteer_name: str


@dataclass(frozen=True)
class DeviceView:
    id: int
    method: str
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


def _active_volunteer(session: Session, volunteer_id: int) -> Volunteer:
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    if vol.status != STATUS_ACTIVE:
        raise DomainError("volunteer_withdrawn", _("%(name)s 已退出志愿者队伍，无法登录", name=vol.name))
    return vol


def find_volunteer_by_phone(session: Session, phone: str) -> Volunteer:
    number = normalise_phone(phone)
    vol = session.scalar(select(Volunteer).where(Volunteer.phone == number))
    if vol is None:
        raise DomainError("not_found", _("没有手机号为 %(p)s 的志愿者", p=number))
    return vol


def issue_login_link(session: Session, volunteer_id: int, *, base_url: str, created_by: str,
                     clock: Clock = system_clock, valid_days: int = DEFAULT_LINK_DAYS) -> IssuedLink:
    vol = _active_volunteer(session, volunteer_id)
    secret = new_secret()
    now = clock()
    link = LoginLink(volunteer_id=vol.id, token_hash=hash_secret(secret), created_at=now,
                     expires_at=now + timedelta(days=valid_days), created_by=created_by)
    session.add(link)
    session.commit()
    return IssuedLink(f"{base_url.rstrip('/')}/login/{secret}", link.expires_at, vol.id, vol.name)


def _link_by_secret(session: Session, secret: str) -> LoginLink:
    link = session.scalar(select(LoginLink).where(LoginLink.token_hash == hash_secret(secret or "")))
    if link is None:
        raise DomainError("link_invalid", _("登录链接无效，请向平安办索取新的链接"))
    return link


def peek_login_link(session: Session, secret: str, *, clock: Clock = system_clock) -> LinkView:
    """What the link is, without using it up (safe for GET and link previewers)."""
    link = _link_by_secret(session, secret)
    state = "used" if link.used_at else "expired" if link.expires_at <= clock() else "valid"
    return LinkView(link.volunteer.name, state, link.expires_at)


def _new_device(session: Session, vol: Volunteer, method: str, user_agent: str | None, now: datetime) -> SignedIn:
    secret = new_secret() + new_secret()
    device = Device(volunteer_id=vol.id, token_hash=hash_secret(secret), method=method,
                    user_agent=(user_agent or "")[:500] or None, created_at=now, last_seen_at=now)
    session.add(device)
    session.flush()
    return SignedIn(secret, device.id, vol.id, vol.name)


def confirm_login_link(session: Session, secret: str, *, user_agent: str | None = None,
                       clock: Clock = system_clock) -> SignedIn:
    """Use the link up and sign this phone in. A second confirmation is refused (`link_used`).

    The conditional UPDATE is the "only once" rule: of two concurrent confirmations exactly one
    changes a row.
    """
    now = clock()
    token_hash = hash_secret(secret or "")
    used = session.execute(update(LoginLink)
                           .where(LoginLink.token_hash == token_hash, LoginLink.used_at.is_(None),
                                  LoginLink.expires_at > now)
                           .values(used_at=now)).rowcount
    if used != 1:
        session.rollback()
        link = _link_by_secret(session, secret)
        if link.used_at is not None:
            raise DomainError("link_used", _("此登录链接已经用过了。每个链接只能登录一次，请向平安办索取新的链接"))
        raise DomainError("link_expired", _("此登录链接已过期，请向平安办索取新的链接"))
    link = session.scalar(select(LoginLink).where(LoginLink.token_hash == token_hash))
    try:
        vol = _active_volunteer(session, link.volunteer_id)
    except DomainError:
        session.rollback()
        raise
    signed_in = _new_device(session, vol, METHOD_LINK, user_agent, now)
    session.commit()
    return signed_in


def card_url(base_url: str, signer: CodeSigner, volunteer: Volunteer) -> str:
    return f"{base_url.rstrip('/')}/card/{signer.sign(CARD, volunteer.id, volunteer.card_version)}"


def resolve_card(session: Session, signer: CodeSigner, code: str) -> Volunteer:
    signed = signer.verify(CARD, code)
    vol = session.get(Volunteer, signed.object_id)
    if vol is None:
        raise DomainError("bad_token", _("二维码无效：不是平安马甲签发的二维码"))
    if signed.version != vol.card_version:
        raise DomainError("card_revoked", _("此志愿者卡已作废，请向平安办领取新卡"))
    return _active_volunteer(session, vol.id)


def sign_in_with_card(session: Session, signer: CodeSigner, code: str, *, user_agent: str | None = None,
                      clock: Clock = system_clock) -> SignedIn:
    vol = resolve_card(session, signer, code)
    signed_in = _new_device(session, vol, METHOD_CARD, user_agent, clock())
    session.commit()
    return signed_in


def revoke_card(session: Session, volunteer_id: int) -> int:
    """Invalidate the volunteer's printed card(s); returns the new card version."""
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    vol.card_version += 1
    session.commit()
    return vol.card_version


def self_service_sign_in(session: Session, phone: str, vest_no: str, *, user_agent: str | None = None,
                         clock: Clock = system_clock) -> SignedIn:
    """Phone + vest number. One generic refusal for every mismatch, so it reveals nothing."""
    if not get_bool(session, SELF_SERVICE_SIGNIN):
        raise DomainError("self_service_disabled", _("自助登录已关闭，请向平安办索取登录链接"))
    refused = DomainError("signin_failed", _("手机号或马甲编号不正确"))
    try:
        number = normalise_phone(phone)
    except DomainError:
        raise refused from None
    vol = session.scalar(select(Volunteer).where(Volunteer.phone == number))
    if vol is None or not vol.vest_no or vol.vest_no.strip().upper() != (vest_no or "").strip().upper():
        raise refused
    _active_volunteer(session, vol.id)
    signed_in = _new_device(session, vol, METHOD_SELF_SERVICE, user_agent, clock())
    session.commit()
    return signed_in


@dataclass(frozen=True)
class SignedInVolunteer:
    """The volunteer behind a device cookie: what every phone request needs, in one query."""
    id: int
    name: str
    team: str | None
    vest_no: str | None
    status: str
    device_id: int


_D, _V = Device.__table__, Volunteer.__table__
_DEVICE_LOOKUP = (select(_D.c.id.label("device_id"), _D.c.revoked_at, _D.c.last_seen_at, _V.c.id, _V.c.name,
                         _V.c.team, _V.c.vest_no, _V.c.status, _V.c.withdrawn_on)
                  .select_from(_D.join(_V, _V.c.id == _D.c.volunteer_id))
                  .where(_D.c.token_hash == bindparam("h")))
_TOUCH_DEVICE = update(Device).where(Device.id == bindparam("did")).values(last_seen_at=bindparam("seen"))


def device_volunteer(session: Session, device_secret: str | None, *,
                     clock: Clock = system_clock) -> SignedInVolunteer | None:
    """The signed-in volunteer of a device cookie, or None (unknown, revoked, or withdrawn)."""
    if not device_secret:
        return None
    row = session.execute(_DEVICE_LOOKUP, {"h": hash_secret(device_secret)}).first()
    if row is None or row.revoked_at is not None:
        return None
    now = clock()
    if withdrawal_in_effect(row.status, row.withdrawn_on, local_date(now)):
        return None
    last = row.last_seen_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    if last is None or now - last > LAST_SEEN_GRANULARITY:
        session.execute(_TOUCH_DEVICE, {"did": row.device_id, "seen": now})
        session.commit()
    return SignedInVolunteer(row.id, row.name, row.team, row.vest_no, row.status, row.device_id)


def list_devices(session: Session, volunteer_id: int) -> list[DeviceView]:
    rows = session.scalars(select(Device).where(Device.volunteer_id == volunteer_id)
                           .order_by(Device.created_at.desc()))
    return [DeviceView(d.id, d.method, d.user_agent, d.created_at, d.last_seen_at, d.revoked_at, d.revoked_by)
            for d in rows]


def revoke_device(session: Session, device_id: int, *, by: str, clock: Clock = system_clock,
                  volunteer_id: int | None = None) -> None:
    device = session.get(Device, device_id)
    if device is None or (volunteer_id is not None and device.volunteer_id != volunteer_id):
        raise DomainError("not_found", _("设备不存在"))
    if device.revoked_at is None:
        device.revoked_at = clock()
        device.revoked_by = by
        session.commit()


def revoke_all_devices(session: Session, volunteer_id: int, *, by: str, clock: Clock = system_clock) -> int:
    now = clock()
    count = session.execute(update(Device).where(Device.volunteer_id == volunteer_id, Device.revoked_at.is_(None))
                            .values(revoked_at=now, revoked_by=by)).rowcount
    session.commit()
    return count
