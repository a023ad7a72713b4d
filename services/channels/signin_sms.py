"""A web sign-in link sent by SMS (a coordinator's button for a volunteer on a new phone).

Why the link is made at send time: only its hash is stored, so the outbox row carries no secret;
the sender issues a fresh one-time link when it sends (a retry issues another, the first unused
one simply expires).
"""
from __future__ import annotations

import json
import uuid

from sqlalchemy.orm import Session

from models.channels import CHANNEL_SMS, ContactPreference
from models.messaging import OUT_PENDING, OUT_UNREACHABLE, OutboxItem
from models.volunteer import Volunteer
from services.clock import Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _
from services.volunteers import withdrawal_in_effect
from services.sms.templates import sms_ready


def queue_signin_sms(session: Session, volunteer_id: int, *, clock: Clock = system_clock) -> int:
    vol = session.get(Volunteer, volunteer_id)
    if vol is None or withdrawal_in_effect(vol.status, vol.withdrawn_on, local_date(clock())):
        raise DomainError("not_found", _("志愿者不存在或已退出"))
    if not sms_ready(session, "signin_link"):
        raise DomainError("sms_off", _("短信未开通或“网页登录链接”模板未填写（消息设置）"))
    pref = session.get(ContactPreference, vol.id)
    if pref is not None and pref.sms_opt_out:
        raise DomainError("sms_opt_out", _("该志愿者选择了不接收短信"))
    now = clock()
    item = OutboxItem(dedupe_key=f"signin-sms:{vol.id}:{uuid.uuid4().hex}", channel=CHANNEL_SMS, volunteer_id=vol.id,
                      status=OUT_PENDING, exhausted_status=OUT_UNREACHABLE, bulk=False,
                      payload=json.dumps({"text": "", "sms": {"template": "signin_link", "params": {}}}),
                      next_attempt_at=now, created_at=now)
    session.add(item)
    session.commit()
    return item.id
