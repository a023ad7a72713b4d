"""The satisfaction survey (indicator 14: ≥ 90 % answer 满意 or 非常满意)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models.messaging import SurveyAnswer, SurveyComment, SurveyRound
from models.volunteer import Volunteer
from services.clock import SHANGHAI, Clock, local_date, system_clock
from services.errors import DomainError
from services.i18n import _, in_programme_language
from services.lengths import check_length
from services.messaging import QueuedMessage, post_message
from services.outbox import Recipient
from services.volunteers import on_roster

def N_(message: str) -> str:
    """Marks a string for extraction (`make translations`); it is translated where it is shown."""
    return message


SCALE = {5: N_("非常满意"), 4: N_("满意"), 3: N_("一般"), 2: N_("不满意"), 1: N_("非常不满意")}
SATISFIED = (4, 5)
# After a score on Telegram, the next message counts as a comment only this long.
COMMENT_WINDOW = timedelta(minutes=10)
# Comments one volunteer may leave in one round: room for a thought sent in several messages, and
# a bound on what one signed-in phone can store.
MAX_COMMENTS = 20
MAX_COMMENT_LENGTH = 1000
DEFAULT_QUESTION = "您对平安志愿者工作的组织和保障（排班、装备、保险、通知）是否满意？"


def scale_label(score: int) -> str:
    return _(SCALE[score])


@dataclass(frozen=True)
class RoundView:
    id: int
    name: str
    question: str
    opens_at: datetime
    closes_at: datetime | None
    sent_at: datetime | None


def _view(r: SurveyRound) -> RoundView:
    return RoundView(r.id, r.name, r.question, r.opens_at, r.closes_at, r.sent_at)


def create_round(session: Session, name: str, *, question: str | None = None, opens_at: datetime | None = None,
                 closes_at: datetime | None = None, clock: Clock = system_clock) -> RoundView:
    name = (name or "").strip()
    if not name:
        raise DomainError("required", _("轮次名称不能为空"))
    check_length(name, 128, _("轮次名称"))
    if session.scalar(select(SurveyRound.id).where(SurveyRound.name == name)) is not None:
        raise DomainError("name_taken", _("轮次“%(n)s”已存在", n=name))
    opens = opens_at or clock()
    if closes_at is not None and closes_at <= opens:
        raise DomainError("end_before_start", _("截止时间必须晚于开始时间"))
    row = SurveyRound(name=name, question=(question or "").strip() or _(DEFAULT_QUESTION), opens_at=opens,
                      closes_at=closes_at, created_at=clock())
    session.add(row)
    session.commit()
    return _view(row)


def get_round(session: Session, name: str | None = None, *, clock: Clock = system_clock) -> RoundView:
    """A round by name, or the open one (the latest opened and not closed)."""
    if name:
        row = session.scalar(select(SurveyRound).where(SurveyRound.name == name))
    else:
        now = clock()
        row = session.scalar(select(SurveyRound).where(SurveyRound.opens_at <= now,
                                                       (SurveyRound.closes_at.is_(None)) | (SurveyRound.closes_at > now))
                             .order_by(SurveyRound.opens_at.desc()))
    if row is None:
        raise DomainError("no_survey", _("现在没有进行中的满意度调查") if not name else _("没有名为“%(n)s”的调查轮次", n=name))
    return _view(row)


def list_rounds(session: Session) -> list[RoundView]:
    return [_view(r) for r in session.scalars(select(SurveyRound).order_by(SurveyRound.opens_at.desc()))]


def survey_buttons(round_id: int):
    return [[{"text": f"{score} {SCALE[score]}", "data": f"sv:{round_id}:{score}"}] for score in (5, 4, 3, 2, 1)]


def _is_open(r: SurveyRound, now: datetime) -> bool:
    return r.opens_at <= now and (r.closes_at is None or r.closes_at > now)


def opening_day(r: SurveyRound) -> date:
    """The round's opening date in Shanghai: a round opening 1 June 07:00 opens on 1 June, not 31 May (UTC)."""
    opens = r.opens_at if r.opens_at.tzinfo else r.opens_at.replace(tzinfo=timezone.utc)
    return opens.astimezone(SHANGHAI).date()


def eligible_condition(r: SurveyRound):
    """Who a round asks, whose answers count and who makes the response rate's denominator: the
    volunteers on the roster on its opening day (joined by then, not withdrawn before it)."""
    day = opening_day(r)
    return and_(Volunteer.joined_on <= day, or_(Volunteer.withdrawn_on.is_(None), Volunteer.withdrawn_on >= day))


@dataclass(frozen=True)
class WaitingSurvey:
    round: RoundView
    answer: "SurveyAnswer | None"


def survey_for(session: Session, volunteer_id: int, *, clock: Clock = system_clock) -> WaitingSurvey | None:
    """The open round this volunteer is asked to answer (eligible on its opening day), with their
    answer if any. /me and the inbox both list what is waiting from this one function, so they
    never disagree (a round opened without a message, or a volunteer who joined after it was sent)."""
    try:
        r = get_round(session, clock=clock)
    except DomainError:
        return None
    row = session.get(SurveyRound, r.id)
    if session.scalar(select(Volunteer.id).where(Volunteer.id == volunteer_id, eligible_condition(row))) is None:
        return None
    return WaitingSurvey(r, my_answer(session, r.id, volunteer_id))


def send_round(session: Session, round_id: int, *, clock: Clock = system_clock) -> QueuedMessage:
    """Ask every eligible volunteer still on the roster today (Telegram buttons, and the web inbox):
    a withdrawal dated ahead is still asked, one already in effect is not. Idempotent per round."""
    r = session.get(SurveyRound, round_id)
    if r is None:
        raise DomainError("no_survey", _("调查轮次不存在"))
    vids = list(session.scalars(select(Volunteer.id).where(on_roster(local_date(clock())), eligible_condition(r))
                                .order_by(Volunteer.id)))
    with in_programme_language():   # to volunteers: in Chinese, whoever pressed "send"
        result = post_message(session, kind="survey", title=_("满意度调查：%(n)s", n=r.name),
                              body=r.question + "\n" + _("请点下面的按钮作答（5 非常满意 … 1 非常不满意），也可以在平安马甲网页上作答。"),
                              recipients=[Recipient(volunteer_id=v) for v in vids], dedupe_key=f"survey:{r.id}",
                              audience=_("全体在册志愿者"), survey_round_id=r.id, buttons=survey_buttons(r.id),
                              clock=clock, commit=False, sms_params={"name": r.name})
    if r.sent_at is None:
        r.sent_at = clock()
    session.commit()
    return result


def remind_round(session: Session, round_id: int, *, clock: Clock = system_clock) -> QueuedMessage:
    """One reminder to those who have not answered (idempotent: the same reminder is sent once)."""
    r = session.get(SurveyRound, round_id)
    if r is None:
        raise DomainError("no_survey", _("调查轮次不存在"))
    answered = select(SurveyAnswer.volunteer_id).where(SurveyAnswer.round_id == r.id)
    vids = list(session.scalars(select(Volunteer.id).where(on_roster(local_date(clock())), eligible_condition(r),
                                                           Volunteer.id.not_in(answered)).order_by(Volunteer.id)))
    with in_programme_language():
        result = post_message(session, kind="survey", title=_("满意度调查提醒：%(n)s", n=r.name),
                              body=r.question + "\n" + _("您还没有作答，请点下面的按钮（约 5 秒）。"),
                              recipients=[Recipient(volunteer_id=v) for v in vids], dedupe_key=f"survey-reminder:{r.id}",
                              audience=_("未作答的志愿者"), survey_round_id=r.id, buttons=survey_buttons(r.id),
                              clock=clock, commit=False, sms_params={"name": r.name})
    if r.reminded_at is None:
        r.reminded_at = clock()
    session.commit()
    return result


@dataclass(frozen=True)
class AnswerResult:
    label: str
    score: int
    changed: bool                  # False: the same score again (a second tap, an old message's button)
    comment_until: datetime | None  # the comment window, when this answer opened one


def answer(session: Session, round_id: int, volunteer_id: int, score: int, *, channel: str = "web",
           clock: Clock = system_clock) -> str:
    """Record (or replace) an answer; returns the label."""
    return record_answer(session, round_id, volunteer_id, score, channel=channel, clock=clock).label


def record_answer(session: Session, round_id: int, volunteer_id: int, score: int, *, channel: str = "web",
                  clock: Clock = system_clock) -> AnswerResult:
    """Record (or replace) an answer. A new or changed score on Telegram opens a short comment
    window; pressing the same score again (an old survey message) changes nothing and reopens nothing."""
    if score not in SCALE:
        raise DomainError("bad_score", _("请选择 1 到 5 分"))
    r = session.get(SurveyRound, round_id)
    now = clock()
    if r is None:
        raise DomainError("no_survey", _("调查轮次不存在"))
    if not _is_open(r, now):
        raise DomainError("survey_closed", _("本轮调查已结束"))
    if session.scalar(select(Volunteer.id).where(Volunteer.id == volunteer_id, eligible_condition(r))) is None:
        raise DomainError("not_eligible", _("本轮调查只请 %(d)s 时在册的志愿者作答，您不在本轮范围内，谢谢您的关心",
                                            d=opening_day(r).isoformat()))
    row = session.scalar(select(SurveyAnswer).where(SurveyAnswer.round_id == round_id,
                                                    SurveyAnswer.volunteer_id == volunteer_id))
    if row is not None and row.score == score:
        window = row.comment_until if row.comment_until and row.comment_until > now else None
        return AnswerResult(scale_label(score), score, False, window)
    if row is None:
        row = SurveyAnswer(round_id=round_id, volunteer_id=volunteer_id, score=score)
        session.add(row)
    row.score, row.channel, row.answered_at = score, channel, now
    row.comment_until = now + COMMENT_WINDOW if channel == "telegram" else None
    row.awaiting_comment = channel == "telegram"
    session.commit()
    return AnswerResult(scale_label(score), score, True, row.comment_until)


def add_comment(session: Session, round_id: int, volunteer_id: int, text: str, *, channel: str = "web",
                clock: Clock = system_clock) -> bool:
    """Append a comment (each kept with its time). A Telegram window stays open until it runs out
    or 跳过/完成 is pressed, so a thought sent as two messages is kept as two comments. False when empty."""
    row = session.scalar(select(SurveyAnswer).where(SurveyAnswer.round_id == round_id,
                                                    SurveyAnswer.volunteer_id == volunteer_id))
    if row is None:
        raise DomainError("no_answer", _("请先选择满意程度"))
    text = (text or "").strip()[:MAX_COMMENT_LENGTH]
    if text:
        kept = session.scalars(select(SurveyComment.text).where(SurveyComment.answer_id == row.id)
                               .order_by(SurveyComment.id.desc())).all()
        if kept and kept[0] == text:   # the same words again: a second tap on 提交, kept once
            return True
        if len(kept) >= MAX_COMMENTS:
            raise DomainError("too_many_comments", _("本轮已收到您 %(n)d 条意见，不能再添加。还有话想说，请直接联系平安办",
                                                     n=MAX_COMMENTS))
        session.add(SurveyComment(answer_id=row.id, text=text, channel=channel, created_at=clock()))
    session.commit()
    return bool(text)


def skip_comment(session: Session, round_id: int, volunteer_id: int) -> bool:
    """跳过: close the comment window. False when there was none to close."""
    row = session.scalar(select(SurveyAnswer).where(SurveyAnswer.round_id == round_id,
                                                    SurveyAnswer.volunteer_id == volunteer_id))
    if row is None or row.comment_until is None:
        return False
    row.awaiting_comment = False
    row.comment_until = None
    session.commit()
    return True


def awaiting_comment(session: Session, volunteer_id: int, *, clock: Clock = system_clock) -> int | None:
    """The round whose Telegram answer is inside its comment window now (None outside any)."""
    return session.scalar(select(SurveyAnswer.round_id).where(SurveyAnswer.volunteer_id == volunteer_id,
                                                              SurveyAnswer.comment_until > clock())
                          .order_by(SurveyAnswer.answered_at.desc()).limit(1))


def comments(session: Session, round_id: int, volunteer_id: int) -> list[SurveyComment]:
    return list(session.scalars(select(SurveyComment).join(SurveyAnswer, SurveyAnswer.id == SurveyComment.answer_id)
                                .where(SurveyAnswer.round_id == round_id, SurveyAnswer.volunteer_id == volunteer_id)
                                .order_by(SurveyComment.created_at, SurveyComment.id)))


def comment_buttons(round_id: int):
    return [[{"text": _("跳过"), "data": f"sk:{round_id}"}]]


def my_answer(session: Session, round_id: int, volunteer_id: int) -> SurveyAnswer | None:
    return session.scalar(select(SurveyAnswer).where(SurveyAnswer.round_id == round_id,
                                                     SurveyAnswer.volunteer_id == volunteer_id))


@dataclass(frozen=True)
class SurveyResults:
    round_id: int
    name: str
    responses: int
    eligible: int
    satisfied: int
    by_score: dict[int, int]

    @property
    def response_rate(self) -> float:
        return self.responses / self.eligible if self.eligible else 0.0

    @property
    def satisfaction_rate(self) -> float:
        return self.satisfied / self.responses if self.responses else 0.0


def results(session: Session, round_id: int) -> SurveyResults:
    r = session.get(SurveyRound, round_id)
    if r is None:
        raise DomainError("no_survey", _("调查轮次不存在"))
    # Answers and the denominator come from the same population, so the rate never exceeds 100 %
    # (answers recorded before the eligibility check existed are left out, not deleted).
    by_score = dict(session.execute(select(SurveyAnswer.score, func.count(SurveyAnswer.id))
                                    .join(Volunteer, Volunteer.id == SurveyAnswer.volunteer_id)
                                    .where(SurveyAnswer.round_id == round_id, eligible_condition(r))
                                    .group_by(SurveyAnswer.score)).all())
    eligible = session.scalar(select(func.count(Volunteer.id)).where(eligible_condition(r))) or 0
    responses = sum(by_score.values())
    return SurveyResults(r.id, r.name, responses, eligible, sum(by_score.get(s, 0) for s in SATISFIED),
                         {s: by_score.get(s, 0) for s in (5, 4, 3, 2, 1)})
