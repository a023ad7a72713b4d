"""One leader lock and one rate window for every channel's sender, Telegram's included (gap 4)."""
from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import bot.sender as telegram_sender
from bot.sender import OutboxSender, Pacer
from delivery.base import LOCK_KEYS, ChannelSender, LeaderLock, RateWindow
from scheduler.runner import ADVISORY_LOCK_KEY as SCHEDULER_KEY


def test_the_telegram_sender_is_a_channel_sender_without_a_lock_of_its_own():
    assert issubclass(OutboxSender, ChannelSender) and OutboxSender.channel == "telegram"
    assert not hasattr(OutboxSender, "_try_lead") and not hasattr(OutboxSender, "_release_lead")
    assert "pg_try_advisory_lock" not in inspect.getsource(telegram_sender)
    sender = OutboxSender(SimpleNamespace(flask_app=None), bot=None)
    assert isinstance(sender.lock, LeaderLock) and sender.lock.key == LOCK_KEYS["telegram"]
    assert isinstance(sender.pacer.window, RateWindow)


def test_lock_keys_are_distinct_from_each_other_and_from_the_schedulers():
    """The SMS sender used the scheduler's key: on PostgreSQL one of them stood by for the other."""
    keys = list(LOCK_KEYS.values()) + [SCHEDULER_KEY]
    assert len(set(keys)) == len(keys)


def test_one_leader_per_channel(app):
    bridge = SimpleNamespace(flask_app=app)
    first, second = LeaderLock(bridge, LOCK_KEYS["telegram"]), LeaderLock(bridge, LOCK_KEYS["telegram"])
    other = LeaderLock(bridge, LOCK_KEYS["sms"])
    try:
        assert first.try_lead()
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            assert not second.try_lead()  # stands by
            assert other.try_lead()       # another channel has its own lock
            first.release()
            assert second.try_lead()      # takes over when the leader's connection goes
        else:
            assert second.try_lead()      # SQLite: no advisory locks, exactly one sender process
    finally:
        for lock in (first, second, other):
            lock.release()


def test_the_window_holds_a_place_after_completion_only_when_asked():
    def one_late_request(window, now):
        place = asyncio.run(window.acquire())
        now[0] += 0.9
        window.done(place)  # the request completes late
        now[0] += 0.2
        return window.wait_time()

    plain_now, held_now = [0.0], [0.0]
    assert one_late_request(RateWindow(1, 1.0, clock=lambda: plain_now[0]), plain_now) == 0.0
    assert one_late_request(RateWindow(1, 1.0, clock=lambda: held_now[0], hold_after=1.0), held_now) > 0


def test_the_pacer_pauses_everyone():
    now = [0.0]
    pacer = Pacer(rate=5, chat_interval=1.0, clock=lambda: now[0])
    pacer.pause(3.0)
    assert pacer.paused_until == 3.0 and pacer.window.wait_time() == 0.0


def test_a_wrong_token_stops_the_sender_without_writing_the_token_and_zero_backoff_is_not_a_tight_loop():
    import pytest
    from telegram.error import InvalidToken

    class Refused:
        async def initialize(self):
            raise InvalidToken("The token `123456:SECRET-token` was rejected by the server.")

    sender = OutboxSender(SimpleNamespace(flask_app=None), bot=Refused(), retry_max=0)
    assert sender.retry_max >= 1.0
    with pytest.raises(SystemExit) as stopped:
        asyncio.run(sender.start())
    assert "SECRET" not in str(stopped.value) and "TELEGRAM_BOT_TOKEN" in str(stopped.value)
    assert stopped.value.__cause__ is None and stopped.value.__suppress_context__
