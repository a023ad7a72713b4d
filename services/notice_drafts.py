"""A notice drafted in the bot: previewed, then sent or cancelled — exactly one of the two.

Why a table: a draft in the bot's memory is lost on restart (a 发送 then says nothing useful), and a
draft whose buttons still work after 取消 lets a coordinator send what they meant to drop. Each
draft ends once; later presses are answered with what really happened.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.messaging import DRAFT_CANCELLED, DRAFT_OPEN, DRAFT_SENT, NoticeDraft
from models.user import STAFF_ROLES, User
from services.clock import Clock, system_clock
from services.errors import DomainError
from services.i18n import _
from services.messaging import Audience, Reach, check_notice_text, message_reach, preview_notice, send_notice


@dataclass(frozen=True)
class DraftView:
    id: int
    text: str
    status: str            # open | sent | cancelled
    recipients: int        # preview: active volunteers
    linked: int            # preview: of whom reachable on Telegram
    reach: Reach | None    # once sent: who got a push, who only the web inbox
    changed: bool = True   # False when the press found the draft already so
    by_sms: int = 0        # preview: first channel SMS
    web_only: int = 0      # preview: no channel, the web inbox only


def _staff(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active or user.role not in STAFF_ROLES:
        raise DomainError("forbidden", _("只有平安办协调员可以发通知。"))
    return user


def create_draft(session: Session, *, user_id: int, chat_id: int, text: str | None,
                 clock: Clock = system_clock) -> DraftView:
    _staff(session, user_id)
    text = check_notice_text(text)
    preview = preview_notice(session, Audience("all"))
    draft = NoticeDraft(user_id=user_id, chat_id=chat_id, text=text, status=DRAFT_OPEN, created_at=clock())
    session.add(draft)
    session.commit()
    return DraftView(draft.id, text, DRAFT_OPEN, preview.recipients, preview.linked, None, True, preview.by_sms,
                     preview.web_only)


def _load(session: Session, draft_id: int, user_id: int) -> NoticeDraft:
    _staff(session, user_id)
    draft = session.get(NoticeDraft, draft_id)
    if draft is None or draft.user_id != user_id:
        raise DomainError("draft_not_found", _("草稿已失效，请重新发送 /notice。"))
    return draft


def _view(session: Session, draft: NoticeDraft, changed: bool) -> DraftView:
    reach = message_reach(session, draft.message_id) if draft.message_id else None
    if reach is not None:
        return DraftView(draft.id, draft.text, draft.status, reach.recipients, reach.pushed, reach, changed)
    preview = preview_notice(session, Audience("all"))
    return DraftView(draft.id, draft.text, draft.status, preview.recipients, preview.linked, None, changed,
                     preview.by_sms, preview.web_only)


def send_draft(session: Session, draft_id: int, *, user_id: int, clock: Clock = system_clock) -> DraftView:
    """发送: queue the notice once; a second press returns the first result unchanged."""
    draft = _load(session, draft_id, user_id)
    if draft.status == DRAFT_CANCELLED:
        raise DomainError("draft_cancelled", _("这份通知草稿已取消，没有发送。如需发送，请重新 /notice。"))
    if draft.status == DRAFT_SENT:
        return _view(session, draft, changed=False)
    now = clock()
    # Claim the draft first: of two racing presses only one moves it from open to sent.
    claimed = session.execute(update(NoticeDraft).where(NoticeDraft.id == draft.id, NoticeDraft.status == DRAFT_OPEN)
                              .values(status=DRAFT_SENT, closed_at=now)).rowcount
    if claimed != 1:
        session.rollback()
        return _view(session, session.get(NoticeDraft, draft_id), changed=False)
    try:
        result = send_notice(session, text=draft.text, audience=Audience("all"), nonce=f"draft:{draft.id}",
                             created_by_user_id=user_id, clock=clock)
    except DomainError:
        session.rollback()
        raise
    session.execute(update(NoticeDraft).where(NoticeDraft.id == draft.id).values(message_id=result.message_id))
    session.commit()
    session.expire_all()
    return _view(session, session.get(NoticeDraft, draft_id), changed=True)


def cancel_draft(session: Session, draft_id: int, *, user_id: int, clock: Clock = system_clock) -> DraftView:
    """取消: the draft is dropped for good; a sent notice cannot be cancelled."""
    draft = _load(session, draft_id, user_id)
    if draft.status == DRAFT_SENT:
        raise DomainError("draft_sent", _("这条通知已经发送，不能取消。"))
    if draft.status == DRAFT_CANCELLED:
        return _view(session, draft, changed=False)
    claimed = session.execute(update(NoticeDraft).where(NoticeDraft.id == draft.id, NoticeDraft.status == DRAFT_OPEN)
                              .values(status=DRAFT_CANCELLED, closed_at=clock())).rowcount
    session.commit()
    session.expire_all()
    draft = session.get(NoticeDraft, draft_id)
    if claimed != 1 and draft.status == DRAFT_SENT:
        raise DomainError("draft_sent", _("这条通知已经发送，不能取消。"))
    return _view(session, draft, changed=claimed == 1)


def get_draft(session: Session, draft_id: int, *, user_id: int) -> DraftView:
    return _view(session, _load(session, draft_id, user_id), changed=False)


def open_drafts(session: Session, user_id: int) -> list[int]:
    return list(session.scalars(select(NoticeDraft.id).where(NoticeDraft.user_id == user_id,
                                                             NoticeDraft.status == DRAFT_OPEN)))
