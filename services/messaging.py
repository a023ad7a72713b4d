"""Messages to volunteers and coordinators: chat links, notices, the web inbox, delivery status.

Messages never carry ID-card or phone numbers: they travel through a foreign messenger.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from models.attendance import ATT_OPEN, Attendance
from models.channels import CHANNEL_SMS, CHANNEL_WEB, CHANNEL_WECOM, DeliveryAttempt
from models.event import ASSIGNMENT_DECLINED, Assignment, Event, Shift
from models.messaging import (CHANNEL_TELEGRAM, OUT_NOT_LINKED, OUT_PENDING, OUT_SENDING, OUT_SENT, ChatLink,
                              ChatLinkToken, Message,
                              MessageRecipient, OutboxItem)
from models.point import PatrolPoint
from models.user import User
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _, in_programme_language
from services.volunteers import on_roster, withdrawal_in_effect
from services.channels.wecom import team_robot_ready
from services.lengths import check_length
from services.outbox import Outgoing, Recipient, enqueue_many, enqueue_team_post, insert_rows
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
        if vol is None or withdrawal_in_effect(vol.status, vol.withdrawn_on, local_date(clock())):
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


def chat_person(session: Session, chat_id: int, *, clock: Clock = system_clock) -> ChatPerson | None:
    """Who a chat belongs to (None for an unlinked chat, a withdrawn volunteer, a disabled account).

    A withdrawal dated ahead keeps the bot until that date: the volunteer may still patrol."""
    link = session.scalar(select(ChatLink).where(ChatLink.channel == CHANNEL_TELEGRAM, ChatLink.chat_id == chat_id,
                                                 ChatLink.unlinked_at.is_(None)))
    if link is None:
        return None
    if link.unreachable_at is not None:  # they wrote to us again: they unblocked the bot
        link.unreachable_at = None
        session.commit()
    if link.volunteer_id:
        vol = session.get(Volunteer, link.volunteer_id)
        return None if withdrawal_in_effect(vol.status, vol.withdrawn_on, local_date(clock())) \
            else ChatPerson("volunteer", vol.id, vol.name, None)
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
    insert_rows(session, MessageRecipient.__table__,
                [{"message_id": msg.id, "volunteer_id": r.volunteer_id, "user_id": r.user_id, "read_at": None}
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


AUDIENCE_KINDS = ("all", "team", "event", "shift", "point", "on_patrol", "tomorrow", "missing")
MISSING_GRACE_MINUTES = 15  # the board's default (BOARD_MISSING_GRACE_MINUTES): two minutes late is not missing


@dataclass(frozen=True)
class Audience:
    """Who a notice is for. The time-bound kinds are evaluated at the moment of the preview and
    again at sending: "on patrol now" (checked in, not out), "assigned tomorrow" (a shift starting
    tomorrow, Shanghai time), "missing tonight" (assigned to a shift whose start plus the grace has
    passed and which has not ended, with no record on it); "point": assigned to a shift at that
    point that has not ended, or on patrol there now."""

    kind: str = "all"      # one of AUDIENCE_KINDS
    value: str | int | None = None
    grace_minutes: int = MISSING_GRACE_MINUTES

    def describe(self, session: Session) -> str:
        if self.kind == "team":
            return _("居委：%(t)s", t=self.value)
        if self.kind == "event":
            event = session.get(Event, int(self.value))
            return _("活动：%(e)s", e=event.name if event else self.value)
        if self.kind == "shift":
            shift = session.get(Shift, int(self.value))
            return _("班次：%(s)s", s=shift_label(shift) if shift else self.value)
        if self.kind == "point":
            point = session.get(PatrolPoint, int(self.value))
            return _("点位：%(p)s", p=point.name if point else self.value)
        if self.kind == "on_patrol":
            return _("正在巡逻的志愿者")
        if self.kind == "tomorrow":
            return _("明天有班次的志愿者")
        if self.kind == "missing":
            return _("今晚缺岗的志愿者（开始 %(g)d 分钟后仍未签到）", g=self.grace_minutes)
        return _("全体在册志愿者")


def shift_label(shift: Shift) -> str:
    """A shift as a coordinator knows it: "11月29日 18:00–22:00 一号点（春节）"."""
    start = shift.starts_at.astimezone(SHANGHAI)
    end = shift.ends_at.astimezone(SHANGHAI)
    point = shift.point.name if shift.point else ""
    event = shift.event.name if shift.event else ""
    return _("%(m)d月%(d)d日 %(a)s–%(b)s %(p)s（%(e)s）", m=start.month, d=start.day, a=start.strftime("%H:%M"),
             b=end.strftime("%H:%M"), p=point, e=event)


def shift_choices(session: Session, *, clock: Clock = system_clock, days_back: int = 1,
                  days_ahead: int = 30) -> list[tuple[int, str]]:
    """Shifts to pick from (yesterday to a month ahead), by date, time and point, never by id."""
    now = clock()
    shifts = session.scalars(select(Shift).where(Shift.ends_at >= now - timedelta(days=days_back),
                                                 Shift.starts_at <= now + timedelta(days=days_ahead))
                             .order_by(Shift.starts_at, Shift.point_id))
    return [(s.id, shift_label(s)) for s in shifts]


def audience_volunteers(session: Session, audience: Audience, *, clock: Clock = system_clock) -> list[int]:
    """The volunteers a notice goes to: those on the roster today (a withdrawal dated ahead still
    gets today's notices, as it still lets them sign in and patrol), narrowed by the audience."""
    now = clock()
    stmt = select(Volunteer.id).where(on_roster(local_date(now)))
    assigned = select(Assignment.volunteer_id).join(Shift, Shift.id == Assignment.shift_id).where(
        Assignment.status != ASSIGNMENT_DECLINED)
    on_patrol = select(Attendance.volunteer_id).where(Attendance.status == ATT_OPEN)
    if audience.kind == "team":
        stmt = stmt.where(Volunteer.team == audience.value)
    elif audience.kind == "event":
        stmt = stmt.where(Volunteer.id.in_(assigned.where(Shift.event_id == int(audience.value))))
    elif audience.kind == "shift":
        stmt = stmt.where(Volunteer.id.in_(assigned.where(Shift.id == int(audience.value))))
    elif audience.kind == "point":
        point_id = int(audience.value)
        stmt = stmt.where(or_(Volunteer.id.in_(assigned.where(Shift.point_id == point_id, Shift.ends_at > now)),
                              Volunteer.id.in_(on_patrol.where(Attendance.point_id == point_id))))
    elif audience.kind == "on_patrol":
        stmt = stmt.where(Volunteer.id.in_(on_patrol))
    elif audience.kind == "tomorrow":
        tomorrow = now.astimezone(SHANGHAI).date() + timedelta(days=1)
        start = datetime.combine(tomorrow, datetime.min.time(), tzinfo=SHANGHAI)
        stmt = stmt.where(Volunteer.id.in_(assigned.where(Shift.starts_at >= start,
                                                          Shift.starts_at < start + timedelta(days=1))))
    elif audience.kind == "missing":
        grace = timedelta(minutes=max(0, audience.grace_minutes))
        late = select(Assignment.volunteer_id).join(Shift, Shift.id == Assignment.shift_id).where(
            Assignment.status != ASSIGNMENT_DECLINED, Shift.starts_at <= now - grace, Shift.ends_at > now,
            ~select(Attendance.id).where(Attendance.shift_id == Shift.id,
                                         Attendance.volunteer_id == Assignment.volunteer_id).exists())
        stmt = stmt.where(Volunteer.id.in_(late))
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


def preview_notice(session: Session, audience: Audience, *, clock: Clock = system_clock) -> NoticePreview:
    """Who the notice would reach, and how (the same routing the outbox will use)."""
    from services.channels.routing import plan_routes
    from services.outbox import active_links

    vids = audience_volunteers(session, audience, clock=clock)
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
    vids = audience_volunteers(session, audience, clock=clock)
    if not vids:
        raise DomainError("no_recipients", _("没有符合条件的在册志愿者"))
    with in_programme_language():   # the signature, default title and audience label: in Chinese for everyone
        body = text + "\n\n—— " + sender_line(session, created_by_user_id)
        return post_message(session, kind="notice", title=title or _("巡逻通知"), body=body,
                            recipients=[Recipient(volunteer_id=v) for v in vids], dedupe_key=f"notice:{nonce}",
                            audience=audience.describe(session), created_by_user_id=created_by_user_id, clock=clock,
                            team_group=str(audience.value) if audience.kind == "team" else None)


@dataclass(frozen=True)
class Reach:
    recipients: int
    pushed: int        # queued to a channel that pushes (Telegram or SMS)
    web_only: int      # no channel: they will see it in the web inbox only
    telegram: int = 0  # of the pushed, first on Telegram
    sms: int = 0       # of the pushed, first by SMS


# An outbox row in one of these is a push on its way or delivered; the others (not linked,
# unreachable, failed) leave the person with the web inbox only.
PUSHED = (OUT_PENDING, OUT_SENDING, OUT_SENT)


def message_reach(session: Session, message_id: int) -> Reach:
    """How many of a message's recipients get a push, and how many only the web inbox."""
    total = session.scalar(select(func.count(MessageRecipient.id)).where(MessageRecipient.message_id == message_id)) or 0
    person = func.coalesce(OutboxItem.volunteer_id, -OutboxItem.user_id)
    live = (OutboxItem.message_id == message_id, OutboxItem.status.in_(PUSHED))
    pushed = session.scalar(select(func.count(func.distinct(person))).where(*live)) or 0
    by_channel = dict(session.execute(select(OutboxItem.channel, func.count(func.distinct(person)))
                                      .where(*live, OutboxItem.team.is_(None)).group_by(OutboxItem.channel)).all())
    return Reach(total, pushed, max(0, total - pushed), by_channel.get(CHANNEL_TELEGRAM, 0),
                 by_channel.get(CHANNEL_SMS, 0))


def reach_text(reach: Reach) -> str:
    """What a coordinator is told once a notice is sent, on the web and in the bot alike: how many
    it went to, how many get a push and through which channel, how many only see the web inbox."""
    if reach.web_only:
        text = _("已发送 %(n)d 人，%(m)d 人未绑定任何渠道，只能在网页消息中看到。", n=reach.recipients, m=reach.web_only)
    else:
        text = _("已发送 %(n)d 人，全部会收到推送。", n=reach.recipients)
    if reach.pushed:
        text += _("推送：Telegram %(t)d 人，短信 %(s)d 人。", t=reach.telegram, s=reach.sms)
    return text


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


DELIVERY_STATUSES = ("sent", "pending", "sending", "failed", "not_linked", "unreachable", "team_group")


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[DeliveryRow]
    total: int       # recipients matching the filter
    page: int
    pages: int


# Which of a person's outbox rows for one message decides their delivery status (a resend adds a
# row on another channel): a delivery is never undone by a later try that did not deliver, a try
# still under way comes next, and otherwise the latest row says where things stand.
_STATUS_RANK = {OUT_SENT: 0, OUT_PENDING: 1, OUT_SENDING: 1}


def _deciding_rows(message_id: int):
    """One outbox row per person of the message (the one that decides), as a subquery."""
    rank = case(*[(OutboxItem.status == s, r) for s, r in _STATUS_RANK.items()], else_=2)
    numbered = (select(OutboxItem.id, OutboxItem.volunteer_id, OutboxItem.user_id, OutboxItem.status,
                       OutboxItem.sent_at, OutboxItem.last_error, OutboxItem.channel,
                       func.row_number().over(partition_by=(OutboxItem.volunteer_id, OutboxItem.user_id),
                                              order_by=(rank, OutboxItem.id.desc())).label("n"))
                .where(OutboxItem.message_id == message_id, OutboxItem.team.is_(None)).subquery())
    return select(numbered).where(numbered.c.n == 1).subquery()


def _delivery_query(message_id: int):
    """Recipients with the one outbox row that decides their status (`_deciding_rows`), so a person
    resent through another channel is one row, not two. Joined on the one key a row can have
    (volunteer, or account) with two plain equality joins: an OR of both in one join condition
    compared every recipient with every outbox row of the notice (2,500² for 2,500 recipients,
    never finishing at 50,000)."""
    by_volunteer = aliased(_deciding_rows(message_id))
    by_user = aliased(_deciding_rows(message_id))
    status = func.coalesce(by_volunteer.c.status, by_user.c.status, OUT_NOT_LINKED)
    query = (select(MessageRecipient.volunteer_id, MessageRecipient.user_id,
                    func.coalesce(Volunteer.name, User.username), Volunteer.team, status,
                    func.coalesce(by_volunteer.c.sent_at, by_user.c.sent_at),
                    func.coalesce(by_volunteer.c.last_error, by_user.c.last_error), MessageRecipient.read_at,
                    func.coalesce(by_volunteer.c.channel, by_user.c.channel),
                    func.coalesce(by_volunteer.c.id, by_user.c.id))
             .select_from(MessageRecipient)
             .outerjoin(Volunteer, Volunteer.id == MessageRecipient.volunteer_id)
             .outerjoin(User, User.id == MessageRecipient.user_id)
             .outerjoin(by_volunteer, by_volunteer.c.volunteer_id == MessageRecipient.volunteer_id)
             .outerjoin(by_user, by_user.c.user_id == MessageRecipient.user_id)
             .where(MessageRecipient.message_id == message_id))
    return query, status


def _show_condition(show: str | None, status, read_at):
    """The notice page's filters, in SQL (`DELIVERY_FILTERS`)."""
    if show == "unread":
        return read_at.is_(None)
    if show == "delivered":
        return status == OUT_SENT
    if show == "in_progress":
        return status.in_((OUT_PENDING, OUT_SENDING))
    if show == "unreachable":
        return status.not_in((OUT_SENT, OUT_PENDING, OUT_SENDING))
    return None


def _tried_channels(session: Session, message_id: int, rows) -> dict[tuple, list[str]]:
    """(volunteer_id, user_id) → every channel tried or queued for that person for this message,
    in order (all their outbox rows, each row's attempts first, then its own channel)."""
    vids = [r[0] for r in rows if r[0]]
    uids = [r[1] for r in rows if r[1]]
    items: list[tuple] = []
    for column, ids in ((OutboxItem.volunteer_id, vids), (OutboxItem.user_id, uids)):
        for start in range(0, len(ids), 900):
            items += session.execute(select(OutboxItem.id, OutboxItem.volunteer_id, OutboxItem.user_id,
                                            OutboxItem.channel)
                                     .where(OutboxItem.message_id == message_id, OutboxItem.team.is_(None),
                                            column.in_(ids[start:start + 900]))).all()
    attempts: dict[int, list[str]] = {}
    ids = [i[0] for i in items]
    for start in range(0, len(ids), 900):
        for oid, channel in session.execute(select(DeliveryAttempt.outbox_id, DeliveryAttempt.channel)
                                            .where(DeliveryAttempt.outbox_id.in_(ids[start:start + 900]))
                                            .order_by(DeliveryAttempt.id)):
            attempts.setdefault(oid, []).append(channel)
    out: dict[tuple, list[str]] = {}
    for oid, vid, uid, channel in sorted(items):
        seen = out.setdefault((vid, uid), [])
        for c in attempts.get(oid, []) + [channel]:
            if c not in seen and c != CHANNEL_WEB:  # "web" is the inbox every message has, not a try
                seen.append(c)
    return out


def _delivery_rows(session: Session, message_id: int, rows) -> list[DeliveryRow]:
    tried = _tried_channels(session, message_id, rows)
    return [DeliveryRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                        tuple(c for c in tried.get((r[0], r[1]), []) if c != r[8])) for r in rows]


def delivery_page(session: Session, message_id: int, *, status: str | None = None, show: str | None = None,
                  page: int = 1, per_page: int = 100) -> DeliveryPage:
    """One page of a notice's recipients, one row per person (optionally only one delivery status,
    or one of the page's filters), each with the channel that decides their status and the other
    channels tried for them."""
    query, status_col = _delivery_query(message_id)
    if status:
        query = query.where(status_col == status)
    condition = _show_condition(show, status_col, MessageRecipient.read_at)
    if condition is not None:
        query = query.where(condition)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = session.execute(query.order_by(Volunteer.team, Volunteer.name, MessageRecipient.id)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return DeliveryPage(_delivery_rows(session, message_id, rows), total, page, pages)


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
    """People by delivery status (each counted once, by the row that decides: `_deciding_rows`),
    plus `read` (web inbox) and `total`: one aggregate query."""
    query, status_col = _delivery_query(message_id)
    sub = query.add_columns(status_col.label("delivery")).subquery()
    counts: dict[str, int] = {"total": 0, "read": 0}
    for delivery, n, read in session.execute(
            select(sub.c.delivery, func.count(), func.count(sub.c.read_at)).group_by(sub.c.delivery)):
        counts[delivery] = n
        counts["total"] += n
        counts["read"] += read
    return counts


@dataclass(frozen=True)
class DeliverySummary:
    recipients: int
    delivered: int     # sent on some channel
    read: int          # opened in the web inbox (messengers and SMS report no reading)
    unread: int
    unreachable: int   # failed, blocked, or no channel at all: the web inbox only
    in_progress: int   # still queued or sending


DELIVERY_FILTERS = ("all", "unread", "delivered", "unreachable", "in_progress")


def delivery_summary(counts: dict[str, int]) -> DeliverySummary:
    """The notice page's summary from `delivery_counts` (people, not outbox rows)."""
    total = counts.get("total", 0)
    delivered = counts.get(OUT_SENT, 0)
    in_progress = counts.get(OUT_PENDING, 0) + counts.get(OUT_SENDING, 0)
    read = counts.get("read", 0)
    return DeliverySummary(total, delivered, read, total - read, total - delivered - in_progress, in_progress)


def _in_flight(session: Session, message_id: int) -> set[tuple]:
    return set(session.execute(select(OutboxItem.volunteer_id, OutboxItem.user_id).where(
        OutboxItem.message_id == message_id, OutboxItem.team.is_(None),
        OutboxItem.status.in_((OUT_PENDING, OUT_SENDING)))).all())


@dataclass(frozen=True)
class Resend:
    queued: int            # unread people sent the message again on another channel
    no_other_channel: int  # unread people with no channel left to try (web inbox only)
    in_progress: int       # still being delivered: left alone


def push_channels_exist(session: Session) -> bool:
    """Whether anyone can be reached outside the web inbox at all: a linked Telegram chat, SMS set
    up, or a team's WeCom group robot. Without one, resending to the unread can reach nobody, and
    the notice page does not offer it."""
    from models import ChatLink
    from models.channels import TeamRobot
    from services.sms.templates import sms_ready

    return (session.scalar(select(ChatLink.id).limit(1)) is not None or sms_ready(session)
            or session.scalar(select(TeamRobot.id).limit(1)) is not None)


def resend_unread(session: Session, message_id: int, *, nonce: str, clock: Clock = system_clock) -> Resend:
    """Send a message again to its recipients who have not read it, each on a channel not tried
    for them yet (e.g. SMS after Telegram). Deduplicated by the form's nonce: a double click
    resends once. People still being delivered to are left alone."""
    from services.channels.routing import plan_routes
    from services.outbox import active_links

    if not nonce or len(nonce) > 64:
        raise DomainError("nonce_required", _("缺少表单标识，请刷新页面后重试"))
    message = session.get(Message, message_id)
    if message is None:
        raise DomainError("not_found", _("消息不存在"))
    query, _status = _delivery_query(message_id)
    unread = session.execute(query.where(MessageRecipient.read_at.is_(None))).all()
    rows = [r for r in _delivery_rows(session, message_id, unread) if r.volunteer_id or r.user_id]
    # Still being delivered to (a try under way, even behind an earlier delivery): left alone.
    in_flight = _in_flight(session, message_id)
    busy = [r for r in rows if (r.volunteer_id, r.user_id) in in_flight]
    rows = [r for r in rows if (r.volunteer_id, r.user_id) not in in_flight]
    text = telegram_text(message.title, message.body)
    template = KIND_TEMPLATES.get(message.kind)
    sms = {"template": template, "params": clip_params(template, {"title": message.title}),
           "round_id": message.survey_round_id} if template else None
    items = {}
    for r in rows:
        recipient = Recipient(volunteer_id=r.volunteer_id, user_id=r.user_id)
        items[recipient.key] = (r, Outgoing(f"msg:{message_id}:resend:{nonce}:{recipient.key}", recipient,
                                            {"text": text, **({"sms": sms} if sms else {})}, message_id))
    plans = plan_routes(session, [o for _r, o in items.values()], active_links(session, [o.recipient for _r, o in items.values()]))
    by_channel: dict[str, list[Outgoing]] = {}
    none = 0
    for r, item in items.values():
        used = {c for c in (r.channel, *r.tried) if c} if r.status != "not_linked" else set()
        other = [c for c in plans[item.dedupe_key].route if c not in used]
        if other:
            by_channel.setdefault(other[0], []).append(item)
        else:
            none += 1
    queued = sum(enqueue_many(session, group, now=clock(), channel=channel) for channel, group in by_channel.items())
    session.commit()
    return Resend(queued, none, len(busy))


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
