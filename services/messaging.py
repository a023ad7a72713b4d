"""Messages to volunteers and coordinators: chat links, notices, the web inbox, delivery status.

Messages never carry ID-card or phone numbers: they travel through a foreign messenger.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.attendance import ATT_OPEN, Attendance
from models.channels import CHANNEL_WECOM, DeliveryAttempt
from models.event import ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.messaging import (CHANNEL_TELEGRAM, OUT_PENDING, OUT_SENDING, OUT_SENT, ChatLink, ChatLinkToken, Message,
                              MessageRecipient, OutboxItem)
from models.point import PatrolPoint
from models.user import User
from models.volunteer import STATUS_ACTIVE, Volunteer
from services.clock import Clock, system_clock
from services.errors import DomainError
from services.i18n import _
from services.channels.wecom import team_robot_ready
from services.lengths import check_length
from services.outbox import Outgoing, Recipient, enqueue_many, enqueue_team_post
from services.sms.templates import KIND_TEMPLATES, clip_params
from services.tokens import hash_secret, is_secret_shaped, new_secret

LINK_TOKEN_HOURS = 72
MAX_NOTICE_LENGTH = 2000


# --- linking a chat ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatPerson:
    kind: str            # volunteer | coordinator
    id: int
    name: str
    role: str | None     # coordinator role (admin, coordinator, leader)


def issue_chat_link(session: Session, *, bot_username: str, volunteer_id: int | None = None,
                    user_id: int | None = None, clock: Clock = system_clock,
                    valid_hours: int = LINK_TOKEN_HOURS, device_id: int | None = None) -> str:
    """A personal `t.me/<bot>?start=<token>` deep link (single use, expires). `device_id` is the
    volunteer's phone that asked for it: revoking that phone later unlinks the chat."""
    if not bot_username:
        raise DomainError("bot_off", _("Telegram 机器人未配置（TELEGRAM_BOT_TOKEN），暂时无法绑定"))
    if volunteer_id is not None:
        vol = session.get(Volunteer, volunteer_id)
        if vol is None or vol.status != STATUS_ACTIVE:
            raise DomainError("not_found", _("志愿者不存在或已退出"))
    elif user_id is None or session.get(User, user_id) is None:
        raise DomainError("not_found", _("账号不存在"))
    secret = new_secret()
    now = clock()
    session.add(ChatLinkToken(token_hash=hash_secret(secret), volunteer_id=volunteer_id, user_id=user_id,
                              device_id=device_id, created_at=now, expires_at=now + timedelta(hours=valid_hours)))
    session.commit()
    return f"https://t.me/{bot_username.lstrip('@')}?start={secret}"


def link_chat(session: Session, token: str, *, chat_id: int, username: str | None = None,
              clock: Clock = system_clock) -> ChatPerson:
    """`/start <token>`: link this chat to the token's person; the token is used up."""
    if not is_secret_shaped(token):  # anything outside the token alphabet is refused before use
        raise DomainError("link_invalid", _("绑定链接无效，请在平安马甲网页上重新获取"))
    now = clock()
    token_hash = hash_secret(token)
    used = session.execute(update(ChatLinkToken).where(ChatLinkToken.token_hash == token_hash,
                                                       ChatLinkToken.used_at.is_(None),
                                                       ChatLinkToken.expires_at > now)
                           .values(used_at=now)).rowcount
    row = session.scalar(select(ChatLinkToken).where(ChatLinkToken.token_hash == token_hash))
    if used != 1:
        session.rollback()
        if row is None:
            raise DomainError("link_invalid", _("绑定链接无效，请在平安马甲网页上重新获取"))
        if row.used_at is not None:
            mine = session.scalar(select(ChatLink.id).where(
                ChatLink.channel == CHANNEL_TELEGRAM, ChatLink.chat_id == chat_id, ChatLink.unlinked_at.is_(None),
                (ChatLink.volunteer_id == row.volunteer_id) if row.volunteer_id else (ChatLink.user_id == row.user_id)))
            if mine is not None:  # their own link, opened again from the same chat
                raise DomainError("already_linked", _("您已经绑定过了，无需再次绑定。发送 /help 查看可用的命令。"))
            raise DomainError("link_used", _("此绑定链接已经用过了，请在网页上重新获取"))
        raise DomainError("link_expired", _("此绑定链接已过期，请在网页上重新获取"))
    # One chat ↔ one person: whatever either side was linked to before is unlinked.
    session.execute(update(ChatLink).where(ChatLink.channel == CHANNEL_TELEGRAM, ChatLink.unlinked_at.is_(None),
                                           (ChatLink.chat_id == chat_id)
                                           | ((ChatLink.volunteer_id == row.volunteer_id) if row.volunteer_id
                                              else (ChatLink.user_id == row.user_id)))
                    .values(unlinked_at=now))
    session.flush()
    session.add(ChatLink(channel=CHANNEL_TELEGRAM, chat_id=chat_id, volunteer_id=row.volunteer_id,
                         user_id=row.user_id, username=(username or "")[:64] or None, linked_at=now,
                         device_id=row.device_id))
    person = _person(session, row.volunteer_id, row.user_id)
    session.commit()
    return person


def _person(session: Session, volunteer_id: int | None, user_id: int | None) -> ChatPerson:
    if volunteer_id:
        vol = session.get(Volunteer, volunteer_id)
        return ChatPerson("volunteer", vol.id, vol.name, None)
    user = session.get(User, user_id)
    return ChatPerson("coordinator", user.id, user.display_name or user.username, user.role)


def chat_person(session: Session, chat_id: int) -> ChatPerson | None:
    """Who a chat belongs to (None for an unlinked chat, a withdrawn volunteer, a disabled account)."""
    link = session.scalar(select(ChatLink).where(ChatLink.channel == CHANNEL_TELEGRAM, ChatLink.chat_id == chat_id,
                                                 ChatLink.unlinked_at.is_(None)))
    if link is None:
        return None
    if link.unreachable_at is not None:  # they wrote to us again: they unblocked the bot
        link.unreachable_at = None
        session.commit()
    if link.volunteer_id:
        vol = session.get(Volunteer, link.volunteer_id)
        return ChatPerson("volunteer", vol.id, vol.name, None) if vol.status == STATUS_ACTIVE else None
    user = session.get(User, link.user_id)
    return ChatPerson("coordinator", user.id, user.display_name or user.username, user.role) if user.active else None


def unlink_chat(session: Session, *, volunteer_id: int | None = None, user_id: int | None = None,
                clock: Clock = system_clock) -> int:
    cond = ChatLink.volunteer_id == volunteer_id if volunteer_id else ChatLink.user_id == user_id
    count = session.execute(update(ChatLink).where(cond, ChatLink.unlinked_at.is_(None))
                            .values(unlinked_at=clock())).rowcount
    session.commit()
    return count


def chat_link_of(session: Session, *, volunteer_id: int | None = None, user_id: int | None = None) -> ChatLink | None:
    cond = ChatLink.volunteer_id == volunteer_id if volunteer_id else ChatLink.user_id == user_id
    return session.scalar(select(ChatLink).where(cond, ChatLink.unlinked_at.is_(None)))


# --- messages ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueuedMessage:
    message_id: int
    recipients: int
    queued: int        # outbox rows created by this call (0 when it was a repeat)
    created: bool


def shift_buttons(shift_id: int) -> list[list[dict[str, str]]]:
    """确认 / 请假 under a shift (in /shifts and in reminders); the bot's shift handler answers them."""
    return [[{"text": _("确认"), "data": f"sh:c:{shift_id}"}, {"text": _("请假"), "data": f"sh:d:{shift_id}"}]]


def telegram_text(title: str, body: str) -> str:
    return f"【{title}】\n{body}"


def post_message(session: Session, *, kind: str, title: str, body: str, recipients: list[Recipient],
                 dedupe_key: str | None, audience: str | None = None, created_by_user_id: int | None = None,
                 survey_round_id: int | None = None, buttons=None, clock: Clock = system_clock,
                 commit: bool = True, sms_params: dict[str, str] | None = None,
                 team_group: str | None = None) -> QueuedMessage:
    """Say something to people: one message (web inbox) plus one outbox row per person.

    With a dedupe key already used, nothing new is created and the first message is returned:
    a job run twice or a double-submitted form sends once. `sms_params` fill the kind's SMS
    template (the sender adds the link); `team_group` names a team whose WeCom group robot gets
    the message once, instead of SMS to its members.
    """
    now = clock()
    if dedupe_key:
        existing = session.scalar(select(Message).where(Message.dedupe_key == dedupe_key))
        if existing is not None:
            count = session.scalar(select(func.count(MessageRecipient.id))
                                   .where(MessageRecipient.message_id == existing.id)) or 0
            return QueuedMessage(existing.id, count, 0, False)
    msg = Message(kind=kind, title=title, body=body, audience=audience, dedupe_key=dedupe_key,
                  created_by_user_id=created_by_user_id, survey_round_id=survey_round_id, created_at=now)
    session.add(msg)
    session.flush()
    session.add_all([MessageRecipient(message_id=msg.id, volunteer_id=r.volunteer_id, user_id=r.user_id)
                     for r in recipients])
    text = telegram_text(title, body)
    template = KIND_TEMPLATES.get(kind)
    sms = {"template": template, "params": clip_params(template, {"title": title, **(sms_params or {})}),
           "round_id": survey_round_id} if template else None
    robot = team_group and team_robot_ready(session, team_group)
    items = [Outgoing(f"msg:{msg.id}:{r.key}", r, {"text": text, "buttons": buttons(r) if callable(buttons) else buttons,
                                                  **({"sms": sms} if sms else {})},
                      msg.id, bulk=kind != "reminder", team_group=bool(robot)) for r in recipients]
    queued = enqueue_many(session, items, now=now)
    if robot:
        enqueue_team_post(session, dedupe_key=f"msg:{msg.id}:team:{team_group}", team=team_group,
                          payload={"text": text}, message_id=msg.id, now=now, channel=CHANNEL_WECOM)
    if commit:
        session.commit()
    return QueuedMessage(msg.id, len(recipients), queued, True)


@dataclass(frozen=True)
class Audience:
    kind: str = "all"      # all | team | event | shift
    value: str | int | None = None

    def describe(self, session: Session) -> str:
        if self.kind == "team":
            return _("居委：%(t)s", t=self.value)
        if self.kind == "event":
            event = session.get(Event, int(self.value))
            return _("活动：%(e)s", e=event.name if event else self.value)
        if self.kind == "shift":
            shift = session.get(Shift, int(self.value))
            return _("班次 #%(s)s", s=shift.id if shift else self.value)
        return _("全体在册志愿者")


def audience_volunteers(session: Session, audience: Audience) -> list[int]:
    stmt = select(Volunteer.id).where(Volunteer.status == STATUS_ACTIVE)
    if audience.kind == "team":
        stmt = stmt.where(Volunteer.team == audience.value)
    elif audience.kind in ("event", "shift"):
        assigned = select(Assignment.volunteer_id).join(Shift, Shift.id == Assignment.shift_id).where(
            Assignment.status != ASSIGNMENT_DECLINED)
        assigned = assigned.where(Shift.event_id == int(audience.value)) if audience.kind == "event" \
            else assigned.where(Shift.id == int(audience.value))
        stmt = stmt.where(Volunteer.id.in_(assigned))
    elif audience.kind != "all":
        raise DomainError("bad_audience", _("未知的发送对象"))
    return list(session.scalars(stmt.order_by(Volunteer.id)))


@dataclass(frozen=True)
class NoticePreview:
    audience: str
    recipients: int
    linked: int
    by_sms: int = 0          # first channel SMS
    web_only: int = 0        # no channel: the web inbox only
    team_group: bool = False  # the team's WeCom group gets it too


def preview_notice(session: Session, audience: Audience) -> NoticePreview:
    """Who the notice would reach, and how (the same routing the outbox will use)."""
    from services.channels.routing import plan_routes
    from services.outbox import active_links

    vids = audience_volunteers(session, audience)
    linked = 0
    for start in range(0, len(vids), 900):
        linked += session.scalar(select(func.count(ChatLink.id)).where(
            ChatLink.volunteer_id.in_(vids[start:start + 900]), ChatLink.unlinked_at.is_(None),
            ChatLink.unreachable_at.is_(None))) or 0
    group = audience.kind == "team" and team_robot_ready(session, str(audience.value))
    sms = {"template": "patrol_notice", "params": {}}
    items = [Outgoing(f"preview:{v}", Recipient(volunteer_id=v), {"sms": sms}, team_group=bool(group)) for v in vids]
    plans = plan_routes(session, items, active_links(session, [i.recipient for i in items]))
    firsts = [p.route[0] if p.route else None for p in plans.values()]
    return NoticePreview(audience.describe(session), len(vids), linked, firsts.count("sms"), firsts.count(None),
                         bool(group))


def check_notice_text(text: str | None) -> str:
    """The notice text, stripped; refused when empty or longer than the limit (with its length,
    so the coordinator knows how much to cut)."""
    text = (text or "").strip()
    if not text:
        raise DomainError("required", _("通知内容不能为空"))
    if len(text) > MAX_NOTICE_LENGTH:
        raise DomainError("too_long", _("通知过长：%(n)s 字，最多 %(max)s 字", n=f"{len(text):,}",
                                        max=f"{MAX_NOTICE_LENGTH:,}"))
    return text


def sender_line(session: Session, user_id: int | None) -> str:
    """Who a notice is from: the office, and the coordinator by display name when there is one."""
    user = session.get(User, user_id) if user_id else None
    if user is None:
        return _("平安办")
    return _("平安办 %(n)s", n=user.display_name or user.username)


def send_notice(session: Session, *, text: str, audience: Audience, nonce: str, created_by_user_id: int | None,
                title: str | None = None, clock: Clock = system_clock) -> QueuedMessage:
    """A coordinator's patrol notice. Deduplicated by the form's nonce, not by its text, so a
    deliberately repeated alert still goes out while a double-submitted form does not."""
    text = check_notice_text(text)
    if not nonce or len(nonce) > 64:
        raise DomainError("nonce_required", _("缺少表单标识，请刷新页面后重试"))
    check_length(title, 128, _("标题"))
    vids = audience_volunteers(session, audience)
    if not vids:
        raise DomainError("no_recipients", _("没有符合条件的在册志愿者"))
    body = text + "\n\n—— " + sender_line(session, created_by_user_id)
    return post_message(session, kind="notice", title=title or _("巡逻通知"), body=body,
                        recipients=[Recipient(volunteer_id=v) for v in vids], dedupe_key=f"notice:{nonce}",
                        audience=audience.describe(session), created_by_user_id=created_by_user_id, clock=clock,
                        team_group=str(audience.value) if audience.kind == "team" else None)


@dataclass(frozen=True)
class Reach:
    recipients: int
    pushed: int        # queued to a messenger chat
    web_only: int      # no reachable chat: they will see it in the web inbox only


def message_reach(session: Session, message_id: int) -> Reach:
    """How many of a message's recipients get a push, and how many only the web inbox."""
    total = session.scalar(select(func.count(MessageRecipient.id)).where(MessageRecipient.message_id == message_id)) or 0
    pushed = session.scalar(select(func.count(func.distinct(func.coalesce(OutboxItem.volunteer_id, -OutboxItem.user_id))))
                            .where(OutboxItem.message_id == message_id,
                                   OutboxItem.status.in_((OUT_PENDING, OUT_SENDING, OUT_SENT)))) or 0
    return Reach(total, pushed, max(0, total - pushed))


@dataclass(frozen=True)
class DeliveryRow:
    volunteer_id: int | None
    user_id: int | None
    name: str
    team: str | None
    status: str          # pending | sending | sent | failed | not_linked | unreachable
    sent_at: datetime | None
    last_error: str | None
    read_at: datetime | None
    channel: str | None = None   # the channel it reached them on (or was last tried on)
    tried: tuple[str, ...] = ()  # the channels tried before, in order


def delivery_status(session: Session, message_id: int) -> list[DeliveryRow]:
    rows = session.execute(
        select(MessageRecipient.volunteer_id, MessageRecipient.user_id,
               func.coalesce(Volunteer.name, User.username), Volunteer.team, OutboxItem.status, OutboxItem.sent_at,
               OutboxItem.last_error, MessageRecipient.read_at, OutboxItem.channel, OutboxItem.id)
        .select_from(MessageRecipient)
        .outerjoin(Volunteer, Volunteer.id == MessageRecipient.volunteer_id)
        .outerjoin(User, User.id == MessageRecipient.user_id)
        .outerjoin(OutboxItem, (OutboxItem.message_id == MessageRecipient.message_id)
                   & (((OutboxItem.volunteer_id == MessageRecipient.volunteer_id) & MessageRecipient.volunteer_id.is_not(None))
                      | ((OutboxItem.user_id == MessageRecipient.user_id) & MessageRecipient.user_id.is_not(None))))
        .where(MessageRecipient.message_id == message_id)
        .order_by(Volunteer.team, Volunteer.name)).all()
    tried: dict[int, list[str]] = {}
    outbox_ids = [r[9] for r in rows if r[9]]
    for start in range(0, len(outbox_ids), 900):
        for oid, channel in session.execute(select(DeliveryAttempt.outbox_id, DeliveryAttempt.channel)
                                            .where(DeliveryAttempt.outbox_id.in_(outbox_ids[start:start + 900]))
                                            .order_by(DeliveryAttempt.id)):
            seen = tried.setdefault(oid, [])
            if not seen or seen[-1] != channel:
                seen.append(channel)
    return [DeliveryRow(r[0], r[1], r[2], r[3], r[4] or "not_linked", r[5], r[6], r[7], r[8],
                        tuple(c for c in tried.get(r[9], []) if c != r[8])) for r in rows]


@dataclass(frozen=True)
class TeamPost:
    team: str
    status: str
    sent_at: datetime | None
    last_error: str | None


def team_posts(session: Session, message_id: int) -> list[TeamPost]:
    """The message's posts to team groups (WeCom robots)."""
    return [TeamPost(*r) for r in session.execute(
        select(OutboxItem.team, OutboxItem.status, OutboxItem.sent_at, OutboxItem.last_error)
        .where(OutboxItem.message_id == message_id, OutboxItem.team.is_not(None)).order_by(OutboxItem.team))]


def delivery_counts(session: Session, message_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in delivery_status(session, message_id):
        counts[row.status] = counts.get(row.status, 0) + 1
        if row.read_at:
            counts["read"] = counts.get("read", 0) + 1
    return counts


@dataclass(frozen=True)
class InboxItem:
    message_id: int
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None
    survey_round_id: int | None


def inbox(session: Session, volunteer_id: int, limit: int = 50) -> list[InboxItem]:
    rows = session.execute(select(Message.id, Message.kind, Message.title, Message.body, Message.created_at,
                                  MessageRecipient.read_at, Message.survey_round_id)
                           .join(MessageRecipient, MessageRecipient.message_id == Message.id)
                           .where(MessageRecipient.volunteer_id == volunteer_id)
                           .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)).all()
    return [InboxItem(*r) for r in rows]


def unread_count(session: Session, volunteer_id: int) -> int:
    return session.scalar(select(func.count(MessageRecipient.id)).where(
        MessageRecipient.volunteer_id == volunteer_id, MessageRecipient.read_at.is_(None))) or 0


def mark_read(session: Session, volunteer_id: int, message_ids: list[int] | None = None, *,
              clock: Clock = system_clock) -> None:
    stmt = update(MessageRecipient).where(MessageRecipient.volunteer_id == volunteer_id,
                                          MessageRecipient.read_at.is_(None))
    if message_ids is not None:
        stmt = stmt.where(MessageRecipient.message_id.in_(message_ids))
    session.execute(stmt.values(read_at=clock()))
    session.commit()


@dataclass(frozen=True)
class OnPatrolLine:
    name: str
    point_name: str | None
    since: datetime


def on_patrol_lines(session: Session) -> list[OnPatrolLine]:
    rows = session.execute(select(Volunteer.name, PatrolPoint.name, Attendance.check_in_at)
                           .join(Volunteer, Volunteer.id == Attendance.volunteer_id)
                           .outerjoin(PatrolPoint, PatrolPoint.id == Attendance.point_id)
                           .where(Attendance.status == ATT_OPEN).order_by(PatrolPoint.code, Attendance.check_in_at))
    return [OnPatrolLine(*r) for r in rows]


# --- a coordinator's or leader's own inbox (leave requests, later other office messages) ---------

def user_inbox(session: Session, user_id: int, limit: int = 50) -> list[InboxItem]:
    rows = session.execute(select(Message.id, Message.kind, Message.title, Message.body, Message.created_at,
                                  MessageRecipient.read_at, Message.survey_round_id)
                           .join(MessageRecipient, MessageRecipient.message_id == Message.id)
                           .where(MessageRecipient.user_id == user_id)
                           .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)).all()
    return [InboxItem(*r) for r in rows]


def user_unread_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count(MessageRecipient.id)).where(
        MessageRecipient.user_id == user_id, MessageRecipient.read_at.is_(None))) or 0


def mark_user_read(session: Session, user_id: int, message_ids: list[int], *, clock: Clock = system_clock) -> int:
    """Marked by an explicit POST from the page, never by opening it (a GET stays safe)."""
    if not message_ids:
        return 0
    count = session.execute(update(MessageRecipient).where(MessageRecipient.user_id == user_id,
                                                           MessageRecipient.read_at.is_(None),
                                                           MessageRecipient.message_id.in_(message_ids))
                            .values(read_at=clock())).rowcount
    session.commit()
    return count
