from datetime import timedelta

from sqlalchemy import func, select

from models import Shift, Volunteer
from services.clock import fixed_clock
from services.demo import load_demo
from tests.conftest import utc


def test_demo_has_a_shift_covering_now_and_upcoming_key_dates(session, cipher):
    now = utc(2026, 11, 25, 10, 17)
    info = load_demo(session, cipher=cipher, admin_password="demo-pass-123", clock=fixed_clock(now))
    assert info.loaded and info.volunteers == 500 and info.points == 12
    covering = session.scalar(select(func.count(Shift.id)).where(Shift.starts_at <= now, Shift.ends_at > now))
    assert covering >= 1
    assert session.scalar(select(func.count(Shift.id)).where(Shift.starts_at > now + timedelta(days=30))) > 0
    phones = session.scalars(select(Volunteer.phone)).all()
    assert len(set(phones)) == 500 and all(len(p) == 11 for p in phones)
    with_ids = session.scalars(select(Volunteer).where(Volunteer.id_number_enc.is_not(None))).all()
    assert with_ids and all("*" * 10 in v.id_number_masked for v in with_ids)
    assert not load_demo(session, cipher=cipher, admin_password="x" * 9, clock=fixed_clock(now)).loaded
