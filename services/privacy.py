"""Data-subject requests and retention (PIPL): a copy of everything held about one volunteer,
erasure of a withdrawn volunteer, and clearing old scan locations.

What erasure keeps, and why (also in docs/privacy.md): the volunteer's row stays with its id,
team, join and withdrawal dates, so head counts of past years do not change; attendances, credits,
hour adjustments, insurance covers, equipment hand-outs and survey scores stay attached to that
anonymous row, so hours, rates and satisfaction of past years do not change either. Everything
that names, reaches or locates the person goes: name, phone, vest and ID numbers, signed-in
phones, sign-in links, chat links, unsent messages, message texts in the outbox, survey comments
(the answer's own and every appended one), scan locations, user agents and free-text notes on
attendances; the office's leave notices about the person stay in coordinators' inboxes, anonymised. The coordinators' action log and
the personal-data export log are kept apart and keep their entries about the erasure itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, inspect, or_, select, update
from sqlalchemy.orm import Session

from models.attendance import Attendance, AttendanceCredit, HourAdjustment, ScanRecord
from models.event import Assignment
from models.messaging import (OUT_PENDING, ChatLink, ChatLinkToken, Message, MessageRecipient, OutboxItem,
                              SurveyAnswer, SurveyComment)
from models.programme import Complaint, EquipmentIssue, InsuranceCover
from models.signin import Device, LoginLink
from models.volunteer import STATUS_WITHDRAWN, Volunteer
from services.audit_log import record_action
from services.clock import Clock, system_clock
from services.errors import DomainError
from services.i18n import _
from services.indicator_snapshots import forget_snapshots
from services.pii import PersonalDataCipher, record_export

DEFAULT_SCAN_LOCATION_RETENTION_DAYS = 400


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None  # ciphertext is never part of a copy; the decrypted number is
    return value


def _rows(objs, *, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out = []
    for obj in objs:
        columns = inspect(obj).mapper.column_attrs
        out.append({c.key: _plain(getattr(obj, c.key)) for c in columns if c.key not in skip})
    return out


def _leave_messages(session: Session, volunteer_id: int) -> list[Message]:
    """The office's messages about this volunteer's 请假 / 撤销请假 (services/assignments.py): they
    carry the name in the coordinators' inboxes. Found by their dedupe key, `leave:<shift>:<volunteer>:…`
    (`unleave:` before the merge window)."""
    rows = session.scalars(select(Message).where(Message.kind == "leave", Message.dedupe_key.is_not(None)))
    out = []
    for m in rows:
        parts = (m.dedupe_key or "").split(":")
        if len(parts) >= 3 and parts[0] in ("leave", "unleave") and parts[2] == str(volunteer_id):
            out.append(m)
    return out


@dataclass(frozen=True)
class SubjectExport:
    content: bytes
    filename: str
    record_count: int


def subject_access_export(session: Session, volunteer_id: int, *, cipher: PersonalDataCipher, actor: str,
                          clock: Clock = system_clock) -> SubjectExport:
    """Everything held about one volunteer, as one JSON file (PIPL art. 45: a copy on request).

    Logged twice in the caller's transaction: in the personal-data export log (it contains the full
    ID number) and in the coordinators' action log.
    """
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    profile = _rows([vol], skip=("id_number_enc", "id_number_hash"))[0]
    profile["id_number"] = cipher.decrypt(vol.id_number_enc) if vol.id_number_enc is not None else None
    messages = session.execute(select(Message.id, Message.kind, Message.title, Message.body, Message.created_at,
                                      MessageRecipient.read_at)
                               .join(MessageRecipient, MessageRecipient.message_id == Message.id)
                               .where(MessageRecipient.volunteer_id == vol.id).order_by(Message.created_at)).all()
    data: dict[str, Any] = {
        "generated_at": clock().isoformat(),
        "profile": profile,
        "devices": _rows(session.scalars(select(Device).where(Device.volunteer_id == vol.id)), skip=("token_hash",)),
        "sign_in_links": _rows(session.scalars(select(LoginLink).where(LoginLink.volunteer_id == vol.id)),
                               skip=("token_hash",)),
        "chat_links": _rows(session.scalars(select(ChatLink).where(ChatLink.volunteer_id == vol.id))),
        "scans": _rows(session.scalars(select(ScanRecord).where(ScanRecord.volunteer_id == vol.id)
                                       .order_by(ScanRecord.scanned_at)), skip=("response_json", "nonce")),
        "attendances": _rows(session.scalars(select(Attendance).where(Attendance.volunteer_id == vol.id)
                                             .order_by(Attendance.check_in_at))),
        "attendance_credits": _rows(session.scalars(select(AttendanceCredit)
                                                    .where(AttendanceCredit.volunteer_id == vol.id))),
        "hour_adjustments": _rows(session.scalars(select(HourAdjustment).where(HourAdjustment.volunteer_id == vol.id))),
        "shift_assignments": _rows(session.scalars(select(Assignment).where(Assignment.volunteer_id == vol.id))),
        "messages": [{"id": m.id, "kind": m.kind, "title": m.title, "body": m.body, "sent_at": _plain(m.created_at),
                      "read_at": _plain(m.read_at)} for m in messages],
        "survey_answers": _rows(session.scalars(select(SurveyAnswer).where(SurveyAnswer.volunteer_id == vol.id))),
        "survey_comments": _rows(session.scalars(
            select(SurveyComment).join(SurveyAnswer, SurveyAnswer.id == SurveyComment.answer_id)
            .where(SurveyAnswer.volunteer_id == vol.id).order_by(SurveyComment.created_at))),
        "leave_messages_to_office": [{"id": m.id, "title": m.title, "body": m.body, "sent_at": _plain(m.created_at)}
                                     for m in _leave_messages(session, vol.id)],
        "insurance_covers": _rows(session.scalars(select(InsuranceCover).where(InsuranceCover.volunteer_id == vol.id))),
        "equipment": _rows(session.scalars(select(EquipmentIssue).where(EquipmentIssue.volunteer_id == vol.id))),
        "complaints": _rows(session.scalars(select(Complaint).where(Complaint.volunteer_id == vol.id))),
    }
    count = sum(len(v) for v in data.values() if isinstance(v, list)) + 1
    record_export(session, actor=actor, what="subject_access_export", record_count=count,
                  detail=f"volunteer={vol.id}")
    record_action(session, actor, "subject_export", f"volunteer:{vol.id}", f"records={count}; format=json",
                  clock=clock)
    content = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")
    return SubjectExport(content, f"volunteer-{vol.id}.json", count)


@dataclass(frozen=True)
class ErasureResult:
    volunteer_id: int
    devices: int
    links: int
    scans_cleared: int


def erase_volunteer(session: Session, volunteer_id: int, *, actor: str, clock: Clock = system_clock) -> ErasureResult:
    """Erase a withdrawn volunteer's personal data, keeping the figures it contributed to.

    Only a withdrawn volunteer: erasing someone still on the roster would silently change this
    year's head count; withdraw first (the withdrawal date decides the years they count in).
    """
    vol = session.get(Volunteer, volunteer_id)
    if vol is None:
        raise DomainError("not_found", _("志愿者不存在"))
    if vol.status != STATUS_WITHDRAWN:
        raise DomainError("not_withdrawn", _("只能删除已退出志愿者的个人信息，请先登记退出"))
    if vol.erased_at is not None:
        raise DomainError("already_erased", _("该志愿者的个人信息已经删除"))
    now = clock()
    vid = vol.id
    vol.name = f"已删除志愿者 #{vid}"  # stored data, so not in the interface language of the request
    vol.phone = f"erased-{vid}"
    vol.vest_no = None
    vol.id_number_enc = vol.id_number_hash = vol.id_number_masked = None
    vol.card_version = (vol.card_version or 1) + 1
    vol.erased_at = now
    devices = session.execute(delete(Device).where(Device.volunteer_id == vid)).rowcount or 0
    links = session.execute(delete(LoginLink).where(LoginLink.volunteer_id == vid)).rowcount or 0
    session.execute(delete(ChatLinkToken).where(ChatLinkToken.volunteer_id == vid))
    session.execute(delete(ChatLink).where(ChatLink.volunteer_id == vid))
    session.execute(delete(OutboxItem).where(OutboxItem.volunteer_id == vid, OutboxItem.status == OUT_PENDING))
    session.execute(update(OutboxItem).where(OutboxItem.volunteer_id == vid)
                    .values(chat_id=None, payload="{}", last_error=None))
    session.execute(update(SurveyAnswer).where(SurveyAnswer.volunteer_id == vid).values(comment=None))
    answer_ids = select(SurveyAnswer.id).where(SurveyAnswer.volunteer_id == vid).scalar_subquery()
    session.execute(delete(SurveyComment).where(SurveyComment.answer_id.in_(answer_ids)))
    # Leave notices in coordinators' inboxes name the person: they stay (the office's record that a
    # leave happened) but anonymised, and their unsent pushes are dropped.
    leave_ids = []
    for m in _leave_messages(session, vid):
        m.title = f"请假变更：已删除志愿者 #{vid}"
        m.body = f"已删除志愿者 #{vid} 的请假或撤销请假（个人信息已按要求删除）。"
        leave_ids.append(m.id)
    if leave_ids:
        session.execute(delete(OutboxItem).where(OutboxItem.message_id.in_(leave_ids),
                                                 OutboxItem.status == OUT_PENDING))
        session.execute(update(OutboxItem).where(OutboxItem.message_id.in_(leave_ids))
                        .values(payload="{}", last_error=None))
    scans = session.execute(update(ScanRecord).where(ScanRecord.volunteer_id == vid)
                            .values(lat=None, lon=None, accuracy_m=None, response_json=None)).rowcount or 0
    session.execute(update(Attendance).where(Attendance.volunteer_id == vid).values(note=None))
    # Stored indicator reports name volunteers in their evidence: dropped, computed again on demand.
    forget_snapshots(session, at=system_clock())   # real time, as the reports' own times
    record_action(session, actor, "erase", f"volunteer:{vid}",
                  f"devices={devices}; links={links}; scans={scans}", clock=clock)
    session.commit()
    return ErasureResult(vid, devices, links, scans)


def clear_old_scan_locations(session: Session, *, now: datetime, retention_days: int) -> int:
    """Clear latitude, longitude and accuracy of scans older than the retention period.

    The record, its refusal code and its distance stay: indicators and reviews use those, and a
    distance without the coordinates no longer says where the person was.
    """
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    result = session.execute(update(ScanRecord)
                             .where(ScanRecord.scanned_at < cutoff,
                                    or_(ScanRecord.lat.is_not(None), ScanRecord.lon.is_not(None),
                                        ScanRecord.accuracy_m.is_not(None)))
                             .values(lat=None, lon=None, accuracy_m=None))
    cleared = result.rowcount or 0
    if cleared:
        record_action(session, "scheduler", "retention", "scan_records",
                      f"cleared locations of {cleared} scans before {cutoff.isoformat()}", clock=lambda: now)
    session.commit()
    return cleared
