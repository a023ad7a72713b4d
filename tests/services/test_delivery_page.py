"""A notice's delivery page at scale: recipients joined to their own outbox row (by volunteer, or by
account), counted once in one query, and shown a page at a time."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from models import OutboxItem, User, Volunteer
from services.messaging import delivery_counts, delivery_page, post_message
from services.outbox import Recipient


def _notice(session, volunteers: int = 250):
    vols = [Volunteer(name=f"丙{i:03d}", phone=f"1370000{i:04d}", team=f"居委{i % 3}", joined_on=date(2026, 1, 1))
            for i in range(volunteers)]
    staff = User(username="coord2", display_name="平安办", role="coordinator", password_hash="x")
    session.add_all([*vols, staff])
    session.flush()
    recipients = [Recipient(volunteer_id=v.id) for v in vols] + [Recipient(user_id=staff.id)]
    msg = post_message(session, kind="notice", title="通知", body="今晚巡逻", dedupe_key="n1", recipients=recipients)
    # As if everyone had linked Telegram: their rows sent, every fifth failed.
    rows = session.scalars(select(OutboxItem).where(OutboxItem.message_id == msg.message_id)
                           .order_by(OutboxItem.id)).all()
    assert len(rows) == len(recipients)
    for i, row in enumerate(rows):
        row.status = "sent" if i % 5 else "failed"
    session.commit()
    return msg.message_id, staff.id


def test_counts_once_per_recipient_and_pages_cover_everyone_once(session):
    mid, staff_id = _notice(session)
    counts = delivery_counts(session, mid)
    assert counts["total"] == 251 and counts["sent"] + counts["failed"] == 251
    assert counts["failed"] == 51 and counts["read"] == 0

    seen = []
    first = delivery_page(session, mid, per_page=100)
    assert (first.total, first.pages, len(first.rows)) == (251, 3, 100)
    for page in (1, 2, 3):
        seen += [(r.volunteer_id, r.user_id) for r in delivery_page(session, mid, page=page, per_page=100).rows]
    assert len(seen) == 251 and len(set(seen)) == 251
    staff_row = [r for p in (1, 2, 3) for r in delivery_page(session, mid, page=p).rows if r.user_id == staff_id]
    assert staff_row and staff_row[0].status != "not_linked" and staff_row[0].name == "coord2"  # joined by account

    failed = delivery_page(session, mid, status="failed", per_page=20)
    assert failed.total == 51 and failed.pages == 3 and all(r.status == "failed" for r in failed.rows)
    assert delivery_page(session, mid, page=99).page == 3  # past the end: the last page


def test_a_recipient_without_an_outbox_row_is_not_linked(session):
    mid, _ = _notice(session, volunteers=4)
    first = session.scalar(select(OutboxItem.id).where(OutboxItem.message_id == mid).order_by(OutboxItem.id).limit(1))
    session.execute(update(OutboxItem).where(OutboxItem.id == first).values(message_id=None))
    session.commit()
    counts = delivery_counts(session, mid)
    assert counts["not_linked"] == 1 and counts["total"] == 5


def _resent(session, volunteers: int, first: list[str], second: dict[int, str], read: tuple[int, ...] = ()):
    """A notice to `volunteers` people whose first rows (Telegram) ended as `first[i]`, and a resend
    on SMS for the people in `second` (index → status of the SMS row)."""
    from services.messaging import mark_read

    vols = [Volunteer(name=f"丁{i}", phone=f"1380000{i:04d}", team="塘口居委", joined_on=date(2026, 1, 1))
            for i in range(volunteers)]
    session.add_all(vols)
    session.flush()
    msg = post_message(session, kind="notice", title="通知", body="今晚巡逻", dedupe_key="n2",
                       recipients=[Recipient(volunteer_id=v.id) for v in vols])
    rows = session.scalars(select(OutboxItem).where(OutboxItem.message_id == msg.message_id)
                           .order_by(OutboxItem.id)).all()
    for row, status in zip(rows, first):
        row.channel, row.status = "telegram", status
    for i, status in second.items():
        session.add(OutboxItem(dedupe_key=f"msg:{msg.message_id}:resend:r1:v{vols[i].id}", channel="sms",
                               message_id=msg.message_id, volunteer_id=vols[i].id, status=status, payload="{}"))
    session.commit()
    for i in read:
        mark_read(session, vols[i].id, [msg.message_id])
    return msg.message_id, vols


def test_a_person_resent_through_another_channel_is_counted_once(session):
    """Telegram failed then SMS sent: delivered. Telegram sent then SMS failed: still delivered.
    Telegram failed then SMS under way: in progress. Read on the web: read once."""
    mid, vols = _resent(session, 4, ["failed", "sent", "failed", "sent"], {0: "sent", 1: "failed", 2: "pending"},
                        read=(1,))
    counts = delivery_counts(session, mid)
    assert counts == {"total": 4, "read": 1, "sent": 3, "pending": 1}
    rows = {r.volunteer_id: r for r in delivery_page(session, mid).rows}
    assert len(rows) == 4
    assert (rows[vols[0].id].status, rows[vols[0].id].channel, rows[vols[0].id].tried) == ("sent", "sms", ("telegram",))
    assert (rows[vols[1].id].status, rows[vols[1].id].channel, rows[vols[1].id].tried) == ("sent", "telegram", ("sms",))
    assert (rows[vols[2].id].status, rows[vols[2].id].channel) == ("pending", "sms")
    assert delivery_page(session, mid, show="delivered").total == 3
    assert delivery_page(session, mid, show="unread").total == 3
    assert delivery_page(session, mid, show="in_progress").total == 1
    assert delivery_page(session, mid, show="unreachable").total == 0


def test_the_latest_row_decides_between_two_that_did_not_deliver(session):
    mid, vols = _resent(session, 2, ["failed", "unreachable"], {0: "unreachable", 1: "failed"})
    rows = {r.volunteer_id: r for r in delivery_page(session, mid).rows}
    assert rows[vols[0].id].status == "unreachable" and rows[vols[1].id].status == "failed"
    assert delivery_counts(session, mid) == {"total": 2, "read": 0, "unreachable": 1, "failed": 1}


def test_the_unpaginated_delivery_list_is_gone():
    import services.messaging as messaging

    assert not hasattr(messaging, "delivery_status") and not hasattr(messaging, "filter_delivery")
