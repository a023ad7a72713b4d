"""Passwordless sign-in for volunteers' phones.

Three ways in, all ending in a `Device` (a random secret in a long-lived cookie, only its hash
stored, and the way it was signed in), valid until a coordinator revokes it:
- a personal one-time link from a coordinator: opening it (GET) changes nothing, because chat apps
  and link previewers open URLs by themselves; only the confirming POST uses it up. Issuing a new
  link can cancel the older unused ones; revoking a phone cancels them all;
- the printed volunteer card's QR: long-lived, revocable by bumping the volunteer's card version,
  which also signs out the phones that used the card;
- phone number + a personal 6-digit PIN a coordinator issues (shown once, printed on the card,
  stored as a salted hash), when an admin allows it. The vest number used before is printed on the
  vest and sequential: anyone could sign in as anyone. Failed attempts are counted in the database,
  per phone number (a lock-out only a coordinator lifts) and per address (a sliding window).

A one-time code sent by SMS can replace the PIN (/signin → 用短信验证码登录): `send_sign_in_code`
queues an SMS through the outbox for a number on the roster, and the sender makes the code when the
text goes out (`issue_sms_code`): the outbox never holds it, only its hash is stored, and each text
sent replaces the code before it. `self_service_sign_in(..., credential=SMS_CODE)` accepts it under
the PIN's attempt limits, lock-out and refusals. A phone signed in this way may not link a Telegram
chat: that needs a personal link.
"""
from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models.signin import (METHOD_CARD, METHOD_LINK, METHOD_PIN, METHOD_SMS_CODE, SHARED_SECRET_METHODS, Device,
                           LoginLink, SigninCode, SigninFailure, SmsCodeRequest)
from models.channels import CHANNEL_SMS
from models.messaging import OUT_PENDING, OUT_UNREACHABLE, OutboxItem
from models.volunteer import Volunteer
from services.clock import Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _
from services.phones import normalise_phone
from services.settings import SELF_SERVICE_SIGNIN, get_bool
from services.tokens import CARD, CodeSigner, hash_secret, is_secret_shaped, new_secret
from services.volunteers import on_roster, withdrawal_in_effect

DEFAULT_LINK_DAYS = 7
LAST_SEEN_GRANULARITY = timedelta(minutes=5)

PIN_LENGTH = 6
# Wrong PINs for one phone number before it is locked until a coordinator lifts the lock: 5 guesses
# out of a million per number.
PHONE_FAILURE_LIMIT = 5
# Wrong PINs from one address (any numbers) within the window: stops spraying many numbers from
# one place, while a street corner's shared carrier address still has room for typos.
ADDRESS_FAILURE_LIMIT = 20
ADDRESS_FAILURE_WINDOW = timedelta(hours=1)
# PBKDF2 (salted) rather than werkzeug's default scrypt: printing a team's cards issues hundreds of
# PINs in one request. A 6-digit PIN cannot withstand an offline search whatever the hash; what
# protects it is the attempt limit online.
PIN_HASH_METHOD = "pbkdf2:sha256:100000"
SMS_CODE_VALID = timedelta(minutes=5)
# Texts a number may be sent per hour (each costs money and reaches a real phone): more requests
# are answered the same way and send nothing.
SMS_CODES_PER_HOUR = 3
# Requests for codes are kept this long (the hourly limit reads the last hour).
SMS_CODE_REQUESTS_KEPT = timedelta(hours=2)
SIGNIN_CODE_TEMPLATE = "signin_code"


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
class IssuedPin:
    volunteer_id: int
    volunteer_name: str
    pin: str
    issued_at: datetime


@dataclass(frozen=True)
class PinStatus:
    issued_at: datetime | None
    failures: int
    locked: bool


@dataclass(frozen=True)
class DeviceView:
    id: int
    method: str
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


def _active_volunteer(session: Session, volunteer_id: int, now: datetime | None = None) -> Volunteer:
    """The volunteer, unless their withdrawal is in effect: one dated ahead still lets them sign in
    (and patrol) until that date, as the scan does."""
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    if withdrawal_in_effect(vol.status, vol.withdrawn_on, local_date(now or system_clock())):
        raise DomainError("volunteer_withdrawn", _("%(name)s 已退出志愿者队伍，无法登录", name=vol.name))
    return vol


def find_volunteer_by_phone(session: Session, phone: str) -> Volunteer:
    number = normalise_phone(phone)
    vol = session.scalar(select(Volunteer).where(Volunteer.phone == number))
    if vol is None:
        raise DomainError("not_found", _("没有手机号为 %(p)s 的志愿者", p=number))
    return vol


def issue_login_link(session: Session, volunteer_id: int, *, base_url: str, created_by: str,
                     clock: Clock = system_clock, valid_days: int = DEFAULT_LINK_DAYS,
                     cancel_older: bool = False) -> IssuedLink:
    """A new one-time link; with `cancel_older`, the volunteer's unused links stop working (a link
    sent to the wrong chat is not left open because a new one was sent to the right one)."""
    now = clock()
    vol = _active_volunteer(session, volunteer_id, now)
    secret = new_secret()
    if cancel_older:
        _cancel_unused_links(session, vol.id, now)
    link = LoginLink(volunteer_id=vol.id, token_hash=hash_secret(secret), created_at=now,
                     expires_at=now + timedelta(days=valid_days), created_by=created_by)
    session.add(link)
    session.commit()
    return IssuedLink(f"{base_url.rstrip('/')}/login/{secret}", link.expires_at, vol.id, vol.name)


def _cancel_unused_links(session: Session, volunteer_id: int, now: datetime) -> int:
    return session.execute(update(LoginLink).where(LoginLink.volunteer_id == volunteer_id,
                                                   LoginLink.used_at.is_(None), LoginLink.revoked_at.is_(None),
                                                   LoginLink.expires_at > now)
                           .values(revoked_at=now)).rowcount


def _link_by_secret(session: Session, secret: str) -> LoginLink:
    link = None
    if is_secret_shaped(secret):
        link = session.scalar(select(LoginLink).where(LoginLink.token_hash == hash_secret(secret)))
    if link is None:
        raise DomainError("link_invalid", _("登录链接无效，请向平安办索取新的链接"))
    return link


def peek_login_link(session: Session, secret: str, *, clock: Clock = system_clock) -> LinkView:
    """What the link is, without using it up (safe for GET and link previewers)."""
    link = _link_by_secret(session, secret)
    state = ("used" if link.used_at else "revoked" if link.revoked_at else
             "expired" if link.expires_at <= clock() else "valid")
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
    link = _link_by_secret(session, secret)  # refuses a malformed or unknown token first
    token_hash = link.token_hash
    used = session.execute(update(LoginLink)
                           .where(LoginLink.token_hash == token_hash, LoginLink.used_at.is_(None),
                                  LoginLink.revoked_at.is_(None), LoginLink.expires_at > now)
                           .values(used_at=now)).rowcount
    if used != 1:
        session.rollback()
        link = _link_by_secret(session, secret)
        if link.used_at is not None:
            raise DomainError("link_used", _("此登录链接已经用过了。每个链接只能登录一次，请向平安办索取新的链接"))
        if link.revoked_at is not None:
            raise DomainError("link_revoked", _("此登录链接已作废，请使用平安办最新发给您的链接"))
        raise DomainError("link_expired", _("此登录链接已过期，请向平安办索取新的链接"))
    link = session.scalar(select(LoginLink).where(LoginLink.token_hash == token_hash))
    try:
        vol = _active_volunteer(session, link.volunteer_id, now)
    except DomainError:
        session.rollback()
        raise
    signed_in = _new_device(session, vol, METHOD_LINK, user_agent, now)
    session.commit()
    return signed_in


def card_url(base_url: str, signer: CodeSigner, volunteer: Volunteer) -> str:
    return f"{base_url.rstrip('/')}/card/{signer.sign(CARD, volunteer.id, volunteer.card_version)}"


def resolve_card(session: Session, signer: CodeSigner, code: str, *, clock: Clock = system_clock) -> Volunteer:
    signed = signer.verify(CARD, code)
    vol = session.get(Volunteer, signed.object_id)
    if vol is None:
        raise DomainError("bad_token", _("二维码无效：不是平安马甲签发的二维码"))
    if signed.version != vol.card_version:
        raise DomainError("card_revoked", _("此志愿者卡已作废，请向平安办领取新卡"))
    return _active_volunteer(session, vol.id, clock())


def sign_in_with_card(session: Session, signer: CodeSigner, code: str, *, user_agent: str | None = None,
                      clock: Clock = system_clock) -> SignedIn:
    vol = resolve_card(session, signer, code, clock=clock)
    signed_in = _new_device(session, vol, METHOD_CARD, user_agent, clock())
    session.commit()
    return signed_in


@dataclass(frozen=True)
class RevokedCard:
    card_version: int
    devices_signed_out: int
    chats_unlinked: int = 0


def _unlink_chats(session: Session, now: datetime, *, device_ids: list[int] | None = None,
                  volunteer_id: int | None = None) -> int:
    """Unlink the Telegram chats linked from these phones (or all of a volunteer's): the bot's
    /login would otherwise keep handing fresh sign-in links to whoever holds the chat."""
    from models.messaging import ChatLink

    if device_ids is not None and not device_ids:
        return 0
    cond = ChatLink.device_id.in_(device_ids) if device_ids is not None else ChatLink.volunteer_id == volunteer_id
    return session.execute(update(ChatLink).where(cond, ChatLink.unlinked_at.is_(None))
                           .values(unlinked_at=now)).rowcount


def revoke_card(session: Session, volunteer_id: int, *, by: str = "system",
                clock: Clock = system_clock) -> RevokedCard:
    """Invalidate the volunteer's printed card(s) and sign out every phone that signed in with one
    (a lost card may already have been scanned by whoever found it)."""
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    vol.card_version += 1
    now = clock()
    card_devices = list(session.scalars(select(Device.id).where(Device.volunteer_id == vol.id,
                                                                Device.method == METHOD_CARD)))
    signed_out = session.execute(update(Device).where(Device.volunteer_id == vol.id, Device.method == METHOD_CARD,
                                                      Device.revoked_at.is_(None))
                                 .values(revoked_at=now, revoked_by=by)).rowcount
    unlinked = _unlink_chats(session, now, device_ids=card_devices)
    session.commit()
    return RevokedCard(vol.card_version, signed_out, unlinked)


def _hash_pin(pin: str) -> str:
    return generate_password_hash(pin, method=PIN_HASH_METHOD)


_DUMMY_PIN_HASH: str | None = None


def _dummy_pin_hash() -> str:
    """Checked against when there is no PIN to check, so an unknown number takes as long as a known one."""
    global _DUMMY_PIN_HASH
    if _DUMMY_PIN_HASH is None:
        _DUMMY_PIN_HASH = _hash_pin(secrets.token_hex(8))
    return _DUMMY_PIN_HASH


def new_pin() -> str:
    return f"{secrets.randbelow(10 ** PIN_LENGTH):0{PIN_LENGTH}d}"


def issue_pin(session: Session, volunteer_id: int, *, clock: Clock = system_clock) -> IssuedPin:
    """A new personal PIN (the old one stops working); returned once, only its hash is kept.
    A coordinator handing out a new PIN has checked who is asking, so the lock-out is lifted too."""
    now = clock()
    vol = _active_volunteer(session, volunteer_id, now)
    pin = new_pin()
    vol.signin_pin_hash = _hash_pin(pin)
    vol.signin_pin_issued_at = now
    session.execute(delete(SigninFailure).where(SigninFailure.phone == vol.phone))
    session.commit()
    return IssuedPin(vol.id, vol.name, pin, now)


def issue_pins(session: Session, volunteer_ids: list[int], *, clock: Clock = system_clock) -> dict[int, str]:
    """New PINs for many volunteers at once (printing a team's cards), in one transaction."""
    now = clock()
    pins: dict[int, str] = {}
    for vol in session.scalars(select(Volunteer).where(Volunteer.id.in_(volunteer_ids),
                                                       on_roster(local_date(now)))):
        pins[vol.id] = new_pin()
        vol.signin_pin_hash = _hash_pin(pins[vol.id])
        vol.signin_pin_issued_at = now
        session.execute(delete(SigninFailure).where(SigninFailure.phone == vol.phone))
    session.commit()
    return pins


def pin_status(session: Session, volunteer_id: int) -> PinStatus:
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    failures = session.scalar(select(func.count(SigninFailure.id)).where(SigninFailure.phone == vol.phone)) or 0
    return PinStatus(vol.signin_pin_issued_at, failures, failures >= PHONE_FAILURE_LIMIT)


def lift_pin_lockout(session: Session, volunteer_id: int) -> int:
    """The coordinator has checked who is asking: forget the failed attempts on this number."""
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    cleared = session.execute(delete(SigninFailure).where(SigninFailure.phone == vol.phone)).rowcount
    session.commit()
    return cleared


class SecretCheck(Protocol):
    """How the secret typed beside the phone number is checked. It must take about as long whether
    or not `vol` is None (an unknown number), and may mark a one-time secret used (the caller commits)."""

    def __call__(self, session: Session, vol: Volunteer | None, secret: str, now: datetime) -> bool: ...


def pin_check(session: Session, vol: Volunteer | None, secret: str, now: datetime) -> bool:
    stored = vol.signin_pin_hash if vol is not None else None
    well_formed = len(secret) == PIN_LENGTH and secret.isascii() and secret.isdigit()
    matches = check_password_hash(stored or _dummy_pin_hash(), secret)
    return stored is not None and well_formed and matches


def sms_code_check(session: Session, vol: Volunteer | None, secret: str, now: datetime) -> bool:
    """An unexpired, unused code sent by `send_sign_in_code`; a match is used up."""
    codes = list(session.scalars(select(SigninCode).where(SigninCode.volunteer_id == vol.id,
                                                          SigninCode.used_at.is_(None), SigninCode.expires_at > now)
                                 .order_by(SigninCode.id.desc()).limit(SMS_CODES_PER_HOUR))) if vol else []
    matched = None
    for code in codes or [None]:
        if check_password_hash(code.code_hash if code else _dummy_pin_hash(), secret) and code is not None:
            matched = code
    if matched is None:
        return False
    matched.used_at = now
    return True


@dataclass(frozen=True)
class Credential:
    """What a phone number is paired with on the sign-in page, and how the device records it."""
    method: str
    check: SecretCheck


PIN = Credential(METHOD_PIN, pin_check)
SMS_CODE = Credential(METHOD_SMS_CODE, sms_code_check)


def _phone_failures(session: Session, number: str) -> int:
    return session.scalar(select(func.count(SigninFailure.id)).where(SigninFailure.phone == number)) or 0


def _address_failures(session: Session, address: str, now: datetime) -> int:
    return session.scalar(select(func.count(SigninFailure.id))
                          .where(SigninFailure.address == address,
                                 SigninFailure.created_at > now - ADDRESS_FAILURE_WINDOW)) or 0


def _refuse_over_limits(session: Session, number: str | None, address: str | None, now: datetime,
                        limit_slack: int = 0) -> None:
    """Refuse before any secret is checked when this address or this number failed too often."""
    if address is not None and _address_failures(session, address, now) >= ADDRESS_FAILURE_LIMIT + limit_slack:
        raise DomainError("signin_throttled", _("登录失败次数过多，请一小时后再试，或向平安办索取登录链接"))
    if number is not None and _phone_failures(session, number) >= PHONE_FAILURE_LIMIT + limit_slack:
        raise DomainError("signin_locked", _("此手机号输错次数过多，自助登录已锁定，请联系平安办解锁"))


def _number_or_none(phone: str) -> str | None:
    try:
        return normalise_phone(phone)
    except DomainError:
        return None


def _require_enabled(session: Session) -> None:
    if not get_bool(session, SELF_SERVICE_SIGNIN):
        raise DomainError("self_service_disabled", _("自助登录已关闭，请向平安办索取登录链接"))


def sms_sign_in_ready(session: Session) -> bool:
    """Whether the office can text sign-in codes: SMS on, with the 登录验证码 template filled in (the
    environment's provider is the web's to check). Without it the page does not offer SMS at all."""
    from services.sms.templates import sms_ready

    return sms_ready(session, SIGNIN_CODE_TEMPLATE)


def send_sign_in_code(session: Session, phone: str, *, address: str | None = None,
                      clock: Clock = system_clock) -> None:
    """Step one of SMS sign-in: queue a text with a one-time code to a number on the roster.

    The answer is the same for any number (no roster oracle): nothing is said about whether a text
    went out. A number gets at most `SMS_CODES_PER_HOUR` texts an hour; a locked number, or an
    address with too many failures, is refused as for the PIN. The code itself is made by the SMS
    sender when the text goes out (`issue_sms_code`), so a resend (a new outbox row; the outbox
    dedupes by key, so each request has its own) makes a new code and the old one stops working."""
    _require_enabled(session)
    if not sms_sign_in_ready(session):
        raise DomainError("sms_signin_off", _("短信验证码登录暂未开通，请用其他方式登录"))
    now = clock()
    number = _number_or_none(phone)
    _refuse_over_limits(session, number, (address or "")[:64] or None, now)
    # The same statements for any number, on the roster or not (a number's requests, this request
    # and the expiry of old ones are written either way): the answer and its timing say nothing.
    key = hash_secret(f"sms-code-request:{number or phone}")
    asked = session.scalar(select(func.count(SmsCodeRequest.id)).where(
        SmsCodeRequest.phone_hash == key, SmsCodeRequest.created_at > now - timedelta(hours=1))) or 0
    session.execute(delete(SmsCodeRequest).where(SmsCodeRequest.created_at < now - SMS_CODE_REQUESTS_KEPT))
    session.add(SmsCodeRequest(phone_hash=key, created_at=now))
    vol = session.scalar(select(Volunteer).where(Volunteer.phone == number)) if number else None
    if vol is not None and not withdrawal_in_effect(vol.status, vol.withdrawn_on, local_date(now)) \
            and asked < SMS_CODES_PER_HOUR:
        session.add(OutboxItem(dedupe_key=f"signin-code:{vol.id}:{uuid.uuid4().hex}", channel=CHANNEL_SMS,
                               volunteer_id=vol.id, status=OUT_PENDING, exhausted_status=OUT_UNREACHABLE, bulk=False,
                               payload=json.dumps({"text": "", "sms": {"template": SIGNIN_CODE_TEMPLATE, "params": {}}}),
                               next_attempt_at=now, created_at=now))
    session.commit()


def issue_sms_code(session: Session, volunteer_id: int, *, clock: Clock = system_clock) -> str:
    """A new one-time code for the text going out now (called by the SMS sender). Only its hash is
    kept; the volunteer's earlier unused codes stop working, so only the latest text's code signs in."""
    now = clock()
    session.execute(update(SigninCode).where(SigninCode.volunteer_id == volunteer_id, SigninCode.used_at.is_(None),
                                             SigninCode.expires_at > now).values(expires_at=now))
    code = new_pin()
    session.add(SigninCode(volunteer_id=volunteer_id, code_hash=_hash_pin(code), created_at=now,
                           expires_at=now + SMS_CODE_VALID))
    session.commit()
    return code


def self_service_sign_in(session: Session, phone: str, secret: str, *, address: str | None = None,
                         user_agent: str | None = None, clock: Clock = system_clock,
                         credential: Credential = PIN) -> SignedIn:
    """Phone number + personal PIN (or an SMS code). One generic refusal for every mismatch, so it
    reveals nothing; every failure is recorded, and too many lock the number (or pause the address)."""
    _require_enabled(session)
    now = clock()
    address = (address or "")[:64] or None
    number = _number_or_none(phone)
    _refuse_over_limits(session, number, address, now)
    # The attempt is recorded as a failure (committed) before its secret is checked, and deleted
    # only by a success: guesses racing on other workers count against each other, so no more than
    # the limit are ever checked for a number, however many arrive at once.
    session.add(SigninFailure(phone=number, address=address, created_at=now))
    session.commit()
    _refuse_over_limits(session, number, address, now, limit_slack=1)
    vol = session.scalar(select(Volunteer).where(Volunteer.phone == number)) if number else None
    secret = "".join((secret or "").split())[:64]
    if not credential.check(session, vol, secret, now) or vol is None:
        session.rollback()
        if credential.method == METHOD_SMS_CODE:
            raise DomainError("signin_failed", _("手机号或验证码不正确（验证码 5 分钟内有效，只能用一次）"))
        raise DomainError("signin_failed", _("手机号或 PIN 不正确"))
    try:
        _active_volunteer(session, vol.id, now)
    except DomainError:
        session.rollback()
        raise
    session.execute(delete(SigninFailure).where(SigninFailure.phone == number))
    signed_in = _new_device(session, vol, credential.method, user_agent, now)
    session.commit()
    return signed_in


def may_link_chat(method: str) -> None:
    """A phone signed in with a PIN may not link Telegram: whoever knows a number and its PIN would
    then receive that volunteer's messages and links for good. A personal link is needed."""
    if method in SHARED_SECRET_METHODS:
        raise DomainError("personal_link_needed",
                          _("用手机号和 PIN 登录的手机不能绑定 Telegram。请用平安办发给您的个人登录链接或志愿者卡登录后再绑定"))


@dataclass(frozen=True)
class SignedInVolunteer:
    """The volunteer behind a device cookie: what every phone request needs, in one query."""
    id: int
    name: str
    team: str | None
    vest_no: str | None
    status: str
    device_id: int
    method: str  # how this phone was signed in (link, card, pin)


_D, _V = Device.__table__, Volunteer.__table__
_DEVICE_LOOKUP = (select(_D.c.id.label("device_id"), _D.c.revoked_at, _D.c.last_seen_at, _D.c.method, _V.c.id, _V.c.name,
                         _V.c.team, _V.c.vest_no, _V.c.status, _V.c.withdrawn_on)
                  .select_from(_D.join(_V, _V.c.id == _D.c.volunteer_id))
                  .where(_D.c.token_hash == bindparam("h")))
_TOUCH_DEVICE = update(Device).where(Device.id == bindparam("did")).values(last_seen_at=bindparam("seen"))


def device_volunteer(session: Session, device_secret: str | None, *,
                     clock: Clock = system_clock) -> SignedInVolunteer | None:
    """The signed-in volunteer of a device cookie, or None (unknown, revoked, or withdrawn)."""
    if not is_secret_shaped(device_secret):
        return None
    # Through the session's connection: the ORM's execution layer adds nothing to a Core select,
    # and every scan starts here (docs/performance.md).
    row = session.connection().execute(_DEVICE_LOOKUP, {"h": hash_secret(device_secret)}).first()
    if row is None or row.revoked_at is not None:
        return None
    now = clock()
    if withdrawal_in_effect(row.status, row.withdrawn_on, local_date(now)):
        return None
    last = row.last_seen_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    if last is None or now - last > LAST_SEEN_GRANULARITY:
        try:
            session.execute(_TOUCH_DEVICE, {"did": row.device_id, "seen": now})
            session.commit()
        except OperationalError:
            # "last seen" is a convenience for coordinators: a database that cannot take a write just
            # now (read-only, full, locked) must not stop a page that only reads.
            session.rollback()
    return SignedInVolunteer(row.id, row.name, row.team, row.vest_no, row.status, row.device_id, row.method)


def list_devices(session: Session, volunteer_id: int) -> list[DeviceView]:
    rows = session.scalars(select(Device).where(Device.volunteer_id == volunteer_id)
                           .order_by(Device.created_at.desc()))
    return [DeviceView(d.id, d.method, d.user_agent, d.created_at, d.last_seen_at, d.revoked_at, d.revoked_by)
            for d in rows]


def revoke_device(session: Session, device_id: int, *, by: str, clock: Clock = system_clock,
                  volunteer_id: int | None = None, cancel_links: bool = True) -> int:
    """Sign a phone out. A coordinator revoking a phone (lost, stolen, taken over) also cancels the
    volunteer's unused links, which may have been sent to the same place, and unlinks the Telegram
    chat linked from that phone; a volunteer signing out their own phone passes `cancel_links=False`
    and keeps both. Returns how many chats were unlinked."""
    device = session.get(Device, device_id)
    if device is None or (volunteer_id is not None and device.volunteer_id != volunteer_id):
        raise DomainError("not_found", _("设备不存在"))
    now = clock()
    if device.revoked_at is None:
        device.revoked_at = now
        device.revoked_by = by
    unlinked = 0
    if cancel_links:
        _cancel_unused_links(session, device.volunteer_id, now)
        unlinked = _unlink_chats(session, now, device_ids=[device.id])
    session.commit()
    return unlinked


@dataclass(frozen=True)
class RevokedDevices:
    devices_signed_out: int
    chats_unlinked: int


def revoke_all_devices(session: Session, volunteer_id: int, *, by: str, clock: Clock = system_clock) -> int:
    """Every phone signed out, unused links cancelled, and the Telegram chat always unlinked (it may
    have been linked before chats recorded their phone)."""
    return revoke_all_devices_detail(session, volunteer_id, by=by, clock=clock).devices_signed_out


def revoke_all_devices_detail(session: Session, volunteer_id: int, *, by: str,
                              clock: Clock = system_clock) -> RevokedDevices:
    now = clock()
    count = session.execute(update(Device).where(Device.volunteer_id == volunteer_id, Device.revoked_at.is_(None))
                            .values(revoked_at=now, revoked_by=by)).rowcount
    _cancel_unused_links(session, volunteer_id, now)
    unlinked = _unlink_chats(session, now, volunteer_id=volunteer_id)
    session.commit()
    return RevokedDevices(count, unlinked)
