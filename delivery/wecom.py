"""The WeCom group robot sender: one text post per team notice, ≤ 20 posts a minute per robot."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from delivery.base import ChannelSender, RateWindow, utcnow
from models.channels import CHANNEL_WECOM, DeliveryAttempt
from services.channels.wecom import PER_MINUTE, clip_bytes, validate_webhook, webhook_url
from services.outbox import Claimed, advance, mark_retry, mark_sent, release
from services.pii import PersonalDataCipher

log = logging.getLogger(__name__)
RETRY_CODES = {45009, -1, 45033, 45047}      # frequency limit, system busy, concurrency limits


def _posts_last_minute(session, team: str, now: datetime) -> int:
    return session.scalar(select(func.count(DeliveryAttempt.id)).where(
        DeliveryAttempt.channel == CHANNEL_WECOM, DeliveryAttempt.team == team,
        DeliveryAttempt.attempted_at > now - timedelta(seconds=60))) or 0


class WecomSender(ChannelSender):
    channel = CHANNEL_WECOM

    def __init__(self, bridge, *, timeout: float = 10.0, **kwargs) -> None:
        super().__init__(bridge, **kwargs)
        self.client = httpx.AsyncClient(timeout=timeout)
        self.cipher = PersonalDataCipher(bridge.config["DATA_KEY"])
        self.base = bridge.config.get("WECOM_WEBHOOK_BASE") or "https://qyapi.weixin.qq.com/"
        self.windows: dict[str, RateWindow] = {}

    async def close(self) -> None:
        await self.client.aclose()

    async def send_batch(self, batch: list[Claimed], stop: asyncio.Event) -> None:
        later: list[int] = []
        for item in batch:
            window = self.windows.setdefault(item.team or "", RateWindow(PER_MINUTE, 60.0))
            recent = await self.bridge.run(lambda s, t=item.team: _posts_last_minute(s, t, utcnow()))
            if stop.is_set() or window.wait_time() > 0 or recent >= PER_MINUTE:
                later.append(item.id)
                continue
            await window.acquire()
            await self.slots.acquire()
            try:
                await self._post(item)
            finally:
                self.slots.release()
        if later:
            await self.bridge.run(release, later, at=utcnow() + timedelta(seconds=5))

    async def _post(self, item: Claimed) -> None:
        def url_of(session):
            return webhook_url(session, self.cipher, item.team or "")

        url = await self.bridge.run(url_of)
        try:
            url = validate_webhook(url or "", base=self.base)
        except Exception as exc:
            await self.bridge.run(advance, item.id, error=f"no usable webhook: {exc}")
            return
        body = {"msgtype": "text", "text": {"content": clip_bytes(item.payload.get("text") or ""),
                                            "mentioned_mobile_list": ["@all"]}}
        try:
            resp = await self.client.post(url, json=body)
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            await self.bridge.run(mark_retry, item.id, error=f"{type(exc).__name__}: {exc}",
                                  at=utcnow() + timedelta(seconds=min(300.0, 2.0 ** item.attempts)))
            return
        code = int(data.get("errcode", -1))
        if code == 0:
            await self.bridge.run(mark_sent, item.id, external_id=None, provider="wecom")
        elif code in RETRY_CODES:
            await self.bridge.run(mark_retry, item.id, error=f"{code}: {data.get('errmsg')}",
                                  at=utcnow() + timedelta(seconds=60))
        else:
            await self.bridge.run(advance, item.id, error=f"{code}: {data.get('errmsg')}")

