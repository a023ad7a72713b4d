"""`/start <token>` with a token no one issued (non-ASCII, overlong, odd): a refusal, never a crash."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from extensions import db
from models import ChatLink
from tests.bot.test_handlers import BotHarness, _message


@pytest.mark.parametrize("token", ["令牌", "A" * 31 + "é", "x" * 4000, "💣" * 32, "..", "AAAA\u200bAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_start_with_an_odd_token_is_refused_politely(app, token):
    req = BotHarness(app).feed(_message(f"/start {token}"))  # an exception in the handler fails here
    assert "绑定链接无效" in req.texts()[-1]
    with app.app_context():
        assert db.session.scalar(select(func.count(ChatLink.id))) == 0
