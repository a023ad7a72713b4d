"""Which channels an outbox item tries, in which order.

The person's order (chosen on /me) or the office default, limited to what works for them:
Telegram when a chat is linked and not blocked; SMS when the message kind has an approved template,
the office switched SMS on, and the person has not opted out — and not for a team notice whose team
has a WeCom group robot (the group gets it). The web inbox always has every message, so an item
with no channel left is "not linked", "unreachable" or "team group", never lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.channels import CHANNEL_SMS, ContactPreference
from models.messaging import CHANNEL_TELEGRAM, OUT_NOT_LINKED, OUT_TEAM_GROUP, OUT_UNREACHABLE
from services.channels import settings as cs
from services.sms.templates import sms_ready


@dataclass(frozen=True)
class Plan:
    route: list[str]          # channels to try, first one first
    chat_id: int | None
    exhausted_status: str     # the status when nothing (more) can be tried

    @property
    def initial_status(self) -> str | None:
        return None if self.route else self.exhausted_status


def preferences(session: Session, volunteer_ids: list[int]) -> dict[int, ContactPreference]:
    out: dict[int, ContactPreference] = {}
    for start in range(0, len(volunteer_ids), 900):
        for row in session.scalars(select(ContactPreference).where(
                ContactPreference.volunteer_id.in_(volunteer_ids[start:start + 900]))):
            out[row.volunteer_id] = row
    return out


def plan_routes(session: Session, items: Iterable, links: dict[str, tuple[int, bool]]) -> dict[str, Plan]:
    """dedupe key → Plan for each `Outgoing` item (links: recipient key → (chat_id, reachable))."""
    items = list(items)
    office = cs.office_order(session)
    prefs = preferences(session, [i.recipient.volunteer_id for i in items if i.recipient.volunteer_id])
    ready: dict[str, bool] = {}
    plans: dict[str, Plan] = {}
    for item in items:
        vid = item.recipient.volunteer_id
        pref = prefs.get(vid) if vid else None
        order = (cs.parse_order(pref.channel_order) if pref and pref.channel_order else None) or office
        link = links.get(item.recipient.key)
        template = (item.payload.get("sms") or {}).get("template")
        if template and template not in ready:
            ready[template] = sms_ready(session, template)
        usable = {
            CHANNEL_TELEGRAM: bool(link and link[1]),
            CHANNEL_SMS: bool(vid and template and ready.get(template) and not (pref and pref.sms_opt_out)
                              and not item.team_group),
        }
        route = [c for c in order if usable.get(c)]
        if item.team_group:
            exhausted = OUT_TEAM_GROUP
        elif link:
            exhausted = OUT_UNREACHABLE
        else:
            exhausted = OUT_NOT_LINKED if not route else OUT_UNREACHABLE
        plans[item.dedupe_key] = Plan(route, link[0] if link else None, exhausted)
    return plans
