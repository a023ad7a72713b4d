"""Passwordless sign-in rules, with a fixed clock."""
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from models import Device, PatrolPoint, SigninFailure, Volunteer
from services.clock import fixed_clock
from services.errors import DomainError
from services.qr import resolve_point_token, rotate_point_key, scan_url
from services.settings import SELF_SERVICE_SIGNIN, set_setting
from services.messaging import link_chat
from services.signin import (ADDRESS_FAILURE_LIMIT, ADDRESS_FAILURE_WINDOW, PHONE_FAILURE_LIMIT, card_url,
                             confirm_login_link, device_volunteer, issue_login_link, issue_pin, lift_pin_lockout,
                             may_link_chat, peek_login_link, pin_status, resolve_card, revoke_card, revoke_device,
                             SMS_CODE, self_service_sign_in, send_sign_in_code, sign_in_with_card)
from services.tokens import CARD, POSTER, CodeSigner
from tests.conftest import utc

NOW = utc(2026, 11, 25, 10, 0)
SIGNER = CodeSigner("test-secret-key")


@pytest.fixture
def vol(session):
    v = Volunteer(name="张三", phone="13900000001", vest_no="PJ-0007", team="塘口居委", joined_on=date(2026, 1, 1))
    session.add(v)
    session.commit()
    return v


def _secret(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_signer_refuses_tampering_and_cross_purpose_codes():
    code = SIGNER.sign(POSTER, 12, 3)
    assert SIGNER.verify(POSTER, code).object_id == 12
    for bad in ["", "12.3", "x.3.abc", code[:-1] + ("A" if code[-1] != "A" else "B"), "13.3." + code.split(".")[2],
                "12.4." + code.split(".")[2]]:
        with pytest.raises(DomainError) as exc:
            SIGNER.verify(POSTER, bad)
        assert exc.value.code == "bad_token"
    with pytest.raises(DomainError):
        SIGNER.verify(CARD, code)
    with pytest.raises(DomainError):
        CodeSigner("another-key").verify(POSTER, code)


def test_point_token_revoked_by_rotation(session):
    p = PatrolPoint(code="P1", name="一号点", radius_m=100)
    session.add(p)
    session.commit()
    url = scan_url("http://x", SIGNER, p)
    token = _secret(url)
    assert resolve_point_token(session, SIGNER, token).code == "P1"
    rotate_point_key(session, "P1")
    with pytest.raises(DomainError) as exc:
        resolve_point_token(session, SIGNER, token)
    assert exc.value.code == "point_revoked"
    assert resolve_point_token(session, SIGNER, _secret(scan_url("http://x", SIGNER, p))).key_version == 2
    p.active = False
    session.commit()
    with pytest.raises(DomainError) as exc:
        resolve_point_token(session, SIGNER, _secret(scan_url("http://x", SIGNER, p)))
    assert exc.value.code == "point_inactive"


def test_login_link_survives_peeks_and_is_used_once(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    secret = _secret(issued.url)
    for _ in range(3):
        assert peek_login_link(session, secret, clock=fixed_clock(NOW)).state == "valid"
    signed = confirm_login_link(session, secret, user_agent="Phone", clock=fixed_clock(NOW))
    assert signed.volunteer_id == vol.id
    assert peek_login_link(session, secret, clock=fixed_clock(NOW)).state == "used"
    with pytest.raises(DomainError) as exc:
        confirm_login_link(session, secret, clock=fixed_clock(NOW))
    assert exc.value.code == "link_used"
    assert session.query(Device).count() == 1


def test_login_link_expires_after_seven_days(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    later = fixed_clock(NOW + timedelta(days=7, seconds=1))
    assert peek_login_link(session, _secret(issued.url), clock=later).state == "expired"
    with pytest.raises(DomainError) as exc:
        confirm_login_link(session, _secret(issued.url), clock=later)
    assert exc.value.code == "link_expired"
    with pytest.raises(DomainError) as exc:
        confirm_login_link(session, "not-a-link", clock=later)
    assert exc.value.code == "link_invalid"


def test_device_is_valid_until_revoked_not_until_a_date(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    signed = confirm_login_link(session, _secret(issued.url), clock=fixed_clock(NOW))
    years_later = fixed_clock(NOW + timedelta(days=3 * 365))
    who = device_volunteer(session, signed.device_secret, clock=years_later)
    assert who.id == vol.id and who.device_id == signed.device_id
    assert session.get(Device, signed.device_id).last_seen_at == NOW + timedelta(days=3 * 365)
    revoke_device(session, signed.device_id, by="user:1")
    assert device_volunteer(session, signed.device_secret, clock=years_later) is None
    assert device_volunteer(session, "forged", clock=years_later) is None


def test_withdrawn_volunteer_cannot_get_links_or_use_devices(session, vol):
    issued = issue_login_link(session, vol.id, base_url="http://x", created_by="test", clock=fixed_clock(NOW))
    signed = confirm_login_link(session, _secret(issued.url), clock=fixed_clock(NOW))
    vol.status, vol.withdrawn_on = "withdrawn", date(2026, 11, 1)
    session.commit()
    assert device_volunteer(session, signed.device_secret, clock=fixed_clock(NOW)) is None
    with pytest.raises(DomainError) as exc:
        issue_login_link(session, vol.id, base_url="http://x", created_by="test")
    assert exc.value.code == "volunteer_withdrawn"


def test_card_signs_in_many_phones_until_revoked(session, vol):
    code = _secret(card_url("http://x", SIGNER, vol))
    first = sign_in_with_card(session, SIGNER, code, user_agent="A")
    second = sign_in_with_card(session, SIGNER, code, user_agent="B")
    assert first.device_id != second.device_id
    assert {d.method for d in session.query(Device)} == {"card"}
    revoke_card(session, vol.id)
    with pytest.raises(DomainError) as exc:
        resolve_card(session, SIGNER, code)
    assert exc.value.code == "card_revoked"
    assert resolve_card(session, SIGNER, _secret(card_url("http://x", SIGNER, vol))).id == vol.id


def _on(session):
    set_setting(session, SELF_SERVICE_SIGNIN, "1", by="admin")


def test_self_service_sign_in_is_off_by_default(session, vol):
    issued = issue_pin(session, vol.id, clock=fixed_clock(NOW))
    with pytest.raises(DomainError) as exc:
        self_service_sign_in(session, "13900000001", issued.pin, clock=fixed_clock(NOW))
    assert exc.value.code == "self_service_disabled"


def test_vest_number_no_longer_signs_anyone_in(session, vol):
    """The takeover: vest numbers are printed and sequential; phone + vest number must not work."""
    _on(session)
    issue_pin(session, vol.id, clock=fixed_clock(NOW))
    for guess in ["PJ-0007", "pj-0007", "0007", "7"]:
        with pytest.raises(DomainError) as exc:
            self_service_sign_in(session, "13900000001", guess, address="198.51.100.1", clock=fixed_clock(NOW))
        assert exc.value.code == "signin_failed"
    assert session.query(Device).count() == 0


def test_no_pin_issued_means_no_self_service(session, vol):
    _on(session)
    for guess in ["", "000000", "123456"]:
        with pytest.raises(DomainError) as exc:
            self_service_sign_in(session, "13900000001", guess, clock=fixed_clock(NOW))
        assert exc.value.code == "signin_failed"


def test_pin_is_stored_hashed_signs_in_and_can_be_reissued(session, vol):
    _on(session)
    first = issue_pin(session, vol.id, clock=fixed_clock(NOW))
    assert len(first.pin) == 6 and first.pin.isdigit()
    stored = session.get(Volunteer, vol.id).signin_pin_hash
    assert first.pin not in stored and stored.startswith("pbkdf2:sha256:") and stored.count("$") == 2  # salted
    signed = self_service_sign_in(session, "+86 139 0000 0001", f" {first.pin[:3]} {first.pin[3:]} ",
                                  clock=fixed_clock(NOW))
    assert signed.volunteer_id == vol.id
    assert session.get(Device, signed.device_id).method == "pin"
    second = issue_pin(session, vol.id, clock=fixed_clock(NOW))
    if second.pin != first.pin:
        with pytest.raises(DomainError):
            self_service_sign_in(session, "13900000001", first.pin, clock=fixed_clock(NOW))
    assert self_service_sign_in(session, "13900000001", second.pin, clock=fixed_clock(NOW)).volunteer_id == vol.id
    assert pin_status(session, vol.id).issued_at == NOW


def _wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 1000000:06d}"


def test_wrong_pins_lock_the_number_until_a_coordinator_lifts_it(session, vol):
    _on(session)
    pin = issue_pin(session, vol.id, clock=fixed_clock(NOW)).pin
    for n in range(PHONE_FAILURE_LIMIT):  # from many addresses: the limit is per number as well
        with pytest.raises(DomainError) as exc:
            self_service_sign_in(session, "13900000001", _wrong(pin), address=f"203.0.113.{n}", clock=fixed_clock(NOW))
        assert exc.value.code == "signin_failed"
    # Counted in the database, so every worker sees the same count; the right PIN is refused now.
    assert session.query(SigninFailure).filter_by(phone="13900000001").count() == PHONE_FAILURE_LIMIT
    with pytest.raises(DomainError) as exc:
        self_service_sign_in(session, "13900000001", pin, address="203.0.113.99",
                             clock=fixed_clock(NOW + timedelta(days=30)))
    assert exc.value.code == "signin_locked"
    assert pin_status(session, vol.id).locked
    lift_pin_lockout(session, vol.id)
    assert not pin_status(session, vol.id).locked
    assert self_service_sign_in(session, "13900000001", pin, clock=fixed_clock(NOW)).volunteer_id == vol.id


def test_unknown_numbers_lock_the_same_way(session, vol):
    """A locked number says "locked" whether or not a volunteer has it, so the lock reveals nothing."""
    _on(session)
    for _n in range(PHONE_FAILURE_LIMIT):
        with pytest.raises(DomainError):
            self_service_sign_in(session, "13900000099", "123456", clock=fixed_clock(NOW))
    with pytest.raises(DomainError) as exc:
        self_service_sign_in(session, "13900000099", "123456", clock=fixed_clock(NOW))
    assert exc.value.code == "signin_locked"


def test_failures_from_one_address_are_limited_across_numbers(session, vol):
    """Spraying one guess over many numbers from one place stops at the address limit."""
    _on(session)
    pin = issue_pin(session, vol.id, clock=fixed_clock(NOW)).pin
    for n in range(ADDRESS_FAILURE_LIMIT):
        with pytest.raises(DomainError) as exc:
            self_service_sign_in(session, f"139000001{n:02d}", "123456", address="198.51.100.7",
                                 clock=fixed_clock(NOW))
        assert exc.value.code == "signin_failed"
    with pytest.raises(DomainError) as exc:
        self_service_sign_in(session, "13900000001", pin, address="198.51.100.7", clock=fixed_clock(NOW))
    assert exc.value.code == "signin_throttled"
    # Another address is unaffected, and the window passes.
    assert self_service_sign_in(session, "13900000001", pin, address="198.51.100.8", clock=fixed_clock(NOW))
    later = fixed_clock(NOW + ADDRESS_FAILURE_WINDOW + timedelta(seconds=1))
    assert self_service_sign_in(session, "13900000001", pin, address="198.51.100.7", clock=later)


def test_unknown_number_costs_a_pin_hash_too(session, vol, monkeypatch):
    """No timing difference between a number on the roster and one that is not."""
    import services.signin as signin

    _on(session)
    calls = []
    real = signin.check_password_hash
    monkeypatch.setattr(signin, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    with pytest.raises(DomainError):
        self_service_sign_in(session, "13900000077", "123456", clock=fixed_clock(NOW))
    assert len(calls) == 1 and calls[0].startswith("pbkdf2:sha256:")


def test_pin_signed_in_phone_may_not_link_telegram():
    with pytest.raises(DomainError) as exc:
        may_link_chat("pin")
    assert exc.value.code == "personal_link_needed"
    may_link_chat("link")
    may_link_chat("card")


def test_revoking_a_card_signs_out_the_phones_that_used_it(session, vol):
    code = _secret(card_url("http://x", SIGNER, vol))
    by_card = [sign_in_with_card(session, SIGNER, code, user_agent=ua) for ua in ("A", "B")]
    by_link = confirm_login_link(session, _secret(issue_login_link(session, vol.id, base_url="http://x",
                                                                   created_by="t").url))
    result = revoke_card(session, vol.id, by="user:1", clock=fixed_clock(NOW))
    assert result.devices_signed_out == 2
    for signed in by_card:
        assert device_volunteer(session, signed.device_secret) is None
    assert device_volunteer(session, by_link.device_secret).id == vol.id  # a personal link is not the card


def test_new_link_can_cancel_the_older_unused_ones(session, vol):
    clock = fixed_clock(NOW)
    old = _secret(issue_login_link(session, vol.id, base_url="http://x", created_by="t", clock=clock).url)
    kept = _secret(issue_login_link(session, vol.id, base_url="http://x", created_by="t", clock=clock).url)
    assert peek_login_link(session, old, clock=clock).state == "valid"
    new = _secret(issue_login_link(session, vol.id, base_url="http://x", created_by="t", clock=clock,
                                   cancel_older=True).url)
    for secret in (old, kept):
        assert peek_login_link(session, secret, clock=clock).state == "revoked"
        with pytest.raises(DomainError) as exc:
            confirm_login_link(session, secret, clock=clock)
        assert exc.value.code == "link_revoked"
    assert confirm_login_link(session, new, clock=clock).volunteer_id == vol.id


def test_revoking_a_device_cancels_the_unused_links(session, vol):
    clock = fixed_clock(NOW)
    phone = confirm_login_link(session, _secret(issue_login_link(session, vol.id, base_url="http://x",
                                                                 created_by="t", clock=clock).url), clock=clock)
    pending = _secret(issue_login_link(session, vol.id, base_url="http://x", created_by="t", clock=clock).url)
    revoke_device(session, phone.device_id, by="user:1", clock=clock)
    with pytest.raises(DomainError) as exc:
        confirm_login_link(session, pending, clock=clock)
    assert exc.value.code == "link_revoked"
    # A volunteer signing out their own phone keeps links the office has just sent.
    other = confirm_login_link(session, _secret(issue_login_link(session, vol.id, base_url="http://x",
                                                                 created_by="t", clock=clock).url), clock=clock)
    fresh = _secret(issue_login_link(session, vol.id, base_url="http://x", created_by="t", clock=clock).url)
    revoke_device(session, other.device_id, by="volunteer", clock=clock, cancel_links=False)
    assert confirm_login_link(session, fresh, clock=clock).volunteer_id == vol.id


ODD_TOKENS = ["令牌", "1.1.令牌令牌令牌令牌令牌令牌令牌令牌令牌令牌令牌", "١.١.AAAAAAAAAAAAAAAAAAAAAA",
              "².1.AAAAAAAAAAAAAAAAAAAAAA", "1.1." + "é" * 22, "x" * 5000, "1" * 5000 + ".1.AAAAAAAAAAAAAAAAAAAAAA",
              "1.1.AAAAAAAAAAAAAAAAAAAAAA\n", "..", "1..", "\x00", "%00", " ", "AAAA\u200bAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
              "A" * 31 + "é"]


@pytest.mark.parametrize("token", ODD_TOKENS)
def test_every_token_parser_refuses_odd_tokens_before_using_them(session, vol, token):
    with pytest.raises(DomainError) as exc:
        SIGNER.verify(POSTER, token)
    assert exc.value.code == "bad_token"
    with pytest.raises(DomainError) as exc:
        resolve_card(session, SIGNER, token)
    assert exc.value.code == "bad_token"
    for fn in (peek_login_link, confirm_login_link):
        with pytest.raises(DomainError) as exc:
            fn(session, token)
        assert exc.value.code == "link_invalid"
    with pytest.raises(DomainError) as exc:
        link_chat(session, token, chat_id=1)
    assert exc.value.code == "link_invalid"
    assert device_volunteer(session, token) is None


def enable_sms_signin(session, **extra) -> None:
    """SMS on, with the 登录验证码 template an office registers (as on /coord/messaging)."""
    from services.channels import settings as cs

    for key, value in {"sms_enabled": "1", "sms_signature": "浦锦平安办", "sms_tpl_signin_code_code": "SMS_900",
                       "sms_tpl_signin_code_text": "您的平安马甲登录验证码：${code}，5分钟内有效。", **extra}.items():
        cs.put(session, key, value, by="test")
    session.commit()


def texted_code(session, at) -> str:
    """What the SMS sender does with the queued text: claim it and make the code (`prepare_sms`)."""
    from services.channels.sms_jobs import SmsJob, prepare_sms
    from services.outbox import claim_due

    items = claim_due(session, worker="t", channel="sms", clock=fixed_clock(at))
    assert len(items) == 1, items
    job = prepare_sms(session, items[0], base_url="http://x", secret="s", clock=fixed_clock(at))
    assert isinstance(job, SmsJob) and job.template == "signin_code", job
    from services.outbox import mark_sent
    mark_sent(session, items[0].id, external_id="b", provider="aliyun", segments=job.segments, cost=job.cost,
              clock=fixed_clock(at))
    return job.params["code"]


def test_an_sms_code_signs_in_once_and_is_never_stored_in_clear(session, vol):
    from models import OutboxItem, SigninCode

    _on(session)
    enable_sms_signin(session)
    send_sign_in_code(session, "139 0000 0001", clock=fixed_clock(NOW))
    send_sign_in_code(session, "13900000077", clock=fixed_clock(NOW))  # not on the roster: the same silence
    rows = session.scalars(select(OutboxItem)).all()
    assert [(r.volunteer_id, r.channel, r.bulk) for r in rows] == [(vol.id, "sms", False)]
    code = texted_code(session, NOW)
    assert len(code) == 6 and code.isdigit()
    assert code not in session.scalar(select(OutboxItem.payload))  # the outbox never held it
    stored = session.scalar(select(SigninCode.code_hash))
    assert code not in stored and stored.startswith("pbkdf2:")
    with pytest.raises(DomainError):  # the code is not a PIN
        self_service_sign_in(session, "13900000001", code, clock=fixed_clock(NOW))
    signed = self_service_sign_in(session, "13900000001", code, credential=SMS_CODE, clock=fixed_clock(NOW))
    assert session.get(Device, signed.device_id).method == "sms_code"
    with pytest.raises(DomainError) as exc:  # used up
        self_service_sign_in(session, "13900000001", code, credential=SMS_CODE, clock=fixed_clock(NOW))
    assert exc.value.code == "signin_failed" and "验证码" in exc.value.message
    with pytest.raises(DomainError) as exc:
        may_link_chat("sms_code")
    assert exc.value.code == "personal_link_needed"


def test_a_resent_code_replaces_the_old_one_and_codes_expire_after_five_minutes(session, vol):
    _on(session)
    enable_sms_signin(session, sms_per_number_interval="0")
    send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW))
    old = texted_code(session, NOW)
    send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW + timedelta(minutes=1)))  # 重新发送
    new = texted_code(session, NOW + timedelta(minutes=1))
    with pytest.raises(DomainError):
        self_service_sign_in(session, "13900000001", old, credential=SMS_CODE,
                             clock=fixed_clock(NOW + timedelta(minutes=2)))
    with pytest.raises(DomainError):  # five minutes after it was texted
        self_service_sign_in(session, "13900000001", new, credential=SMS_CODE,
                             clock=fixed_clock(NOW + timedelta(minutes=6, seconds=1)))
    send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW + timedelta(minutes=7)))
    fresh = texted_code(session, NOW + timedelta(minutes=7))
    assert self_service_sign_in(session, "13900000001", fresh, credential=SMS_CODE,
                                clock=fixed_clock(NOW + timedelta(minutes=8))).volunteer_id == vol.id


def test_sms_codes_are_limited_per_number_and_share_the_pins_lock_out(session, vol):
    from models import OutboxItem

    _on(session)
    enable_sms_signin(session)
    for _n in range(5):
        send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW))
    assert session.scalar(select(func.count(OutboxItem.id))) == 3  # a few texts an hour per number
    send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW + timedelta(minutes=61)))
    assert session.scalar(select(func.count(OutboxItem.id))) == 4
    for _n in range(PHONE_FAILURE_LIMIT):
        with pytest.raises(DomainError):
            self_service_sign_in(session, "13900000001", "000000", credential=SMS_CODE, address="10.0.0.9",
                                 clock=fixed_clock(NOW))
    for attempt in (lambda: send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW)),
                    lambda: self_service_sign_in(session, "13900000001", "123456", credential=SMS_CODE,
                                                 clock=fixed_clock(NOW))):
        with pytest.raises(DomainError) as exc:
            attempt()
        assert exc.value.code == "signin_locked"
    # An address that failed too often may not ask for texts either.
    session.add_all([SigninFailure(phone=None, address="10.0.0.8", created_at=NOW)
                     for _n in range(ADDRESS_FAILURE_LIMIT)])
    session.commit()
    with pytest.raises(DomainError) as exc:
        send_sign_in_code(session, "13900000002", address="10.0.0.8", clock=fixed_clock(NOW))
    assert exc.value.code == "signin_throttled"


def test_a_code_request_costs_the_same_statements_for_any_number(session, vol):
    """Whether a number is on the roster must not show in the page's timing either: a stranger's
    number runs the same statements, writes and commit as a volunteer's, all but the text itself."""
    from sqlalchemy import event

    from models import OutboxItem, SmsCodeRequest

    _on(session)
    enable_sms_signin(session)
    engine = session.get_bind()

    def statements(phone: str, at) -> list[str]:
        seen: list[str] = []

        def record(conn, cursor, statement, params, context, executemany):
            seen.append(" ".join(statement.split()[:3]))

        event.listen(engine, "before_cursor_execute", record)
        try:
            send_sign_in_code(session, phone, clock=fixed_clock(at))
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return seen

    text = f"INSERT INTO {OutboxItem.__tablename__}"
    member = statements("13900000001", NOW)
    stranger = statements("13900000077", NOW + timedelta(seconds=1))
    assert member.count(text) == 1 and text not in stranger
    assert [s for s in member if s != text] == stranger
    assert "INSERT INTO sms_code_requests" in stranger
    # Requests are kept two hours: the hourly limit reads them, then they are gone.
    send_sign_in_code(session, "13900000078", clock=fixed_clock(NOW + timedelta(hours=2, minutes=1)))
    assert session.scalar(select(func.count(SmsCodeRequest.id))) == 1


def test_no_code_is_sent_while_sms_sign_in_is_not_set_up(session, vol):
    _on(session)
    with pytest.raises(DomainError) as exc:
        send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW))
    assert exc.value.code == "sms_signin_off"
    enable_sms_signin(session, sms_tpl_signin_code_code="")
    with pytest.raises(DomainError) as exc:
        send_sign_in_code(session, "13900000001", clock=fixed_clock(NOW))
    assert exc.value.code == "sms_signin_off"


def test_an_attempt_is_counted_before_its_pin_is_checked(session, vol):
    """What makes the limit hold with several workers: while one worker checks a PIN, any other
    worker (another connection) already counts that attempt, so racing guesses cannot exceed it."""
    from sqlalchemy.orm import Session as PlainSession

    from extensions import db
    from services.signin import PIN, Credential

    _on(session)
    pin = issue_pin(session, vol.id, clock=fixed_clock(NOW)).pin
    seen = []

    def watching_check(s, v, secret, now):
        with PlainSession(db.engine) as other_worker:
            seen.append(other_worker.query(SigninFailure).filter_by(phone="13900000001").count())
        return PIN.check(s, v, secret, now)

    for _n in range(PHONE_FAILURE_LIMIT - 1):
        session.add(SigninFailure(phone="13900000001", address=None, created_at=NOW))
    session.commit()
    signed = self_service_sign_in(session, "13900000001", pin, credential=Credential("pin", watching_check),
                                  clock=fixed_clock(NOW))
    assert seen == [PHONE_FAILURE_LIMIT] and signed.volunteer_id == vol.id
    assert session.query(SigninFailure).count() == 0  # a success clears the number
    # Two guesses "in flight" beyond the limit: the later one is refused before its PIN is checked.
    for _n in range(PHONE_FAILURE_LIMIT):
        session.add(SigninFailure(phone="13900000001", address=None, created_at=NOW))
    session.commit()
    seen.clear()
    with pytest.raises(DomainError) as exc:
        self_service_sign_in(session, "13900000001", pin, credential=Credential("pin", watching_check),
                             clock=fixed_clock(NOW))
    assert exc.value.code == "signin_locked" and seen == []
