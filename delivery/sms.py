"""The SMS channel sender: one provider (Alibaba Cloud or Tencent Cloud), its limits, the cost."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx

from delivery.base import ChannelSender, RateWindow, utcnow
from models.channels import CHANNEL_SMS
from services.channels.costs import SHANGHAI, maybe_warn_office, sync_month_expenditure
from services.channels.sms_jobs import SmsJob, prepare_sms
from services.outbox import Claimed, advance, mark_retry, mark_sent, release
from services.sms.providers import SmsProvider

log = logging.getLogger(__name__)


class SmsSender(ChannelSender):
    channel = CHANNEL_SMS

    def __init__(self, bridge, provider: SmsProvider, *, rate: int = 20, **kwargs) -> None:
        super().__init__(bridge, **kwargs)
        self.provider = provider
        self.window = RateWindow(rate, 1.1)
        self.base_url = bridge.config["PUBLIC_BASE_URL"]
        self.secret = bridge.config["SECRET_KEY"]
        self.sent_since_sync = 0

    async def close(self) -> None:
        await self.provider.close()

    async def send_batch(self, batch: list[Claimed], stop: asyncio.Event) -> None:
        tasks: list[asyncio.Task] = []
        seen: set[int] = set()
        later: list[int] = []
        for item in batch:
            # Two messages for one number in one batch: the second waits for the per-number interval.
            if stop.is_set() or item.volunteer_id in seen:
                later.append(item.id)
                continue
            seen.add(item.volunteer_id)
            job = await self.bridge.run(prepare_sms, item, base_url=self.base_url, secret=self.secret)
            if not isinstance(job, SmsJob):
                continue
            await self.slots.acquire()
            await self.window.acquire()
            tasks.append(asyncio.create_task(self._send_one(item, job)))
            await asyncio.sleep(0)  # the request goes out now, when the window counted it
        if tasks:
            await asyncio.gather(*tasks)
        if later:
            await self.bridge.run(release, later, at=utcnow() + timedelta(seconds=1))
        if self.sent_since_sync:
            await self._sync_costs()

    async def after_idle(self) -> None:
        if self.sent_since_sync:
            await self._sync_costs()

    async def _sync_costs(self) -> None:
        self.sent_since_sync = 0
        day = utcnow().astimezone(SHANGHAI).date()
        await self.bridge.run(sync_month_expenditure, day=day, provider=self.provider.name)
        await self.bridge.run(maybe_warn_office)

    async def _send_one(self, item: Claimed, job: SmsJob) -> None:
        try:
            result = await self.provider.send(phone=job.phone, sign_name=job.sign_name, template_code=job.template_code,
                                              template=job.template, params=job.params, order=job.order,
                                              reference=f"outbox-{item.id}")
        except httpx.HTTPError as exc:
            backoff = min(300.0, 2.0 ** item.attempts)
            await self.bridge.run(mark_retry, item.id, error=f"{type(exc).__name__}: {exc}",
                                  at=utcnow() + timedelta(seconds=backoff))
        except Exception as exc:  # never let one message stop the loop
            log.exception("SMS for outbox item %s failed", item.id)
            await self.bridge.run(mark_retry, item.id, error=repr(exc), at=utcnow() + timedelta(seconds=30))
        else:
            if result.ok:
                segments = result.segments or job.segments
                cost = job.cost if segments == job.segments else (job.cost / job.segments * segments)
                self.sent_since_sync += 1
                await self.bridge.run(mark_sent, item.id, external_id=result.external_id, provider=self.provider.name,
                                      segments=segments, cost=cost)
            elif result.retry:
                backoff = min(600.0, 5.0 * 2.0 ** item.attempts)
                await self.bridge.run(mark_retry, item.id, error=f"{result.code}: {result.message}",
                                      at=utcnow() + timedelta(seconds=backoff))
            else:
                await self.bridge.run(advance, item.id, error=f"{result.code}: {result.message}")
        finally:
            self.slots.release()
