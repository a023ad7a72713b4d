"""Hours and targets on the volunteer's pages read as credited: rounded down, a half-hour target whole
(gap 5: `%.0f` showed a 6.5 h target as "6")."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from extensions import db
from services.hours import hours_text
from services.programme import update_year
from services.programme_year import current_year
from services.review import add_adjustment


def test_hours_text_rounds_down_and_drops_a_trailing_zero():
    assert [hours_text(v) for v in (6, 6.0, 6.5, 6.49, 6.45, 0.1 + 0.2, 12.96, None)] == \
        ["6", "6", "6.5", "6.4", "6.4", "0.3", "12.9", "0"]


def test_my_page_shows_the_half_hour_target(app, client, auth):
    vid = auth.volunteer()
    now = datetime.now(ZoneInfo(app.config["TIMEZONE"]))
    with app.app_context():
        update_year(db.session, current_year(db.session, now), target_hours=6.5)
        add_adjustment(db.session, vid, minutes=389, work_date=now.date(), reason="补录", by_user_id=None)
    page = client.get("/me").get_data(as_text=True)
    assert "<strong>6.4</strong> / 6.5" in page


def test_the_coordinators_volunteer_page_shows_the_half_hour_target(app, client, auth):
    vid = auth.volunteer()
    auth.login()
    now = datetime.now(ZoneInfo(app.config["TIMEZONE"]))
    with app.app_context():
        update_year(db.session, current_year(db.session, now), target_hours=6.5)
    page = client.get(f"/coord/volunteers/{vid}").get_data(as_text=True)
    assert "/ 6.5" in page
