"""A withdrawal dated ahead leaves the bot and sign-in working until that date (review, item 13)."""
from __future__ import annotations

from datetime import date

import pytest

from models import Volunteer
from models.messaging import ChatLink
from services.clock import fixed_clock
from services.errors import DomainError
from services.messaging import chat_person
from services.signin import (confirm_login_link, issue_login_link, issue_pins, resolve_card, card_url)
from services.tokens import CodeSigner
from services.volunteers import withdraw_volunteer
from tests.conftest import utc

BEFORE = fixed_clock(utc(2027, 2, 27, 10, 0))   # 27 February, Shanghai
ON_THE_DAY = fixed_clock(utc(2027, 2, 28, 1, 0))  # 28 February 09:00, Shanghai
SIGNER = CodeSigner("test-secret-key")


@pytest.fixture
def leaving(session):
    v = Volunteer(name="张三", phone="13900000001", vest_no="PJ-0007", joined_on=date(2026, 1, 1))
    session.add(v)
    session.commit()
    session.add(ChatLink(chat_id=555, volunteer_id=v.id))
    session.commit()
    withdraw_volunteer(session, v.id, date(2027, 2, 28), clock=BEFORE, by="user:1")
    return v


def test_the_bot_still_knows_them_until_the_date(session, leaving):
    person = chat_person(session, 555, clock=BEFORE)
    assert person is not None and person.id == leaving.id
    assert chat_person(session, 555, clock=ON_THE_DAY) is None


def test_they_can_still_sign_in_until_the_date(session, leaving):
    url = issue_login_link(session, leaving.id, base_url="http://x", created_by="t", clock=BEFORE).url
    assert confirm_login_link(session, url.rsplit("/", 1)[1], clock=BEFORE).volunteer_id == leaving.id
    code = card_url("http://x", SIGNER, leaving).rsplit("/", 1)[1]
    assert resolve_card(session, SIGNER, code, clock=BEFORE).id == leaving.id
    assert set(issue_pins(session, [leaving.id], clock=BEFORE)) == {leaving.id}
    url = issue_login_link(session, leaving.id, base_url="http://x", created_by="t", clock=BEFORE).url
    for attempt in (lambda: confirm_login_link(session, url.rsplit("/", 1)[1], clock=ON_THE_DAY),
                    lambda: issue_login_link(session, leaving.id, base_url="http://x", created_by="t", clock=ON_THE_DAY),
                    lambda: resolve_card(session, SIGNER, code, clock=ON_THE_DAY)):
        with pytest.raises(DomainError) as exc:
            attempt()
        assert exc.value.code == "volunteer_withdrawn"
    assert issue_pins(session, [leaving.id], clock=ON_THE_DAY) == {}
