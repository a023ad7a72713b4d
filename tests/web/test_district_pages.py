"""Issue 13 item 8 over HTTP: the board's rows fragment answers 304 while nothing changed, one
point's board, the review queue and the indicator drill-downs in pages."""
from __future__ import annotations

from datetime import date, datetime

from extensions import db
from models import Attendance
from services.clock import from_local
from tests.conftest import csrf_from
from tests.web.test_night_pages import night  # noqa: F401 - the fixture


def test_board_rows_answer_304_until_something_changes(client, auth, night, app):  # noqa: F811
    auth.login()
    first = client.get("/coord/board/rows")
    tag = first.headers["ETag"]
    assert first.status_code == 200 and tag and "孙八" in first.get_data(as_text=True)
    again = client.get("/coord/board/rows", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
    night["clock"].advance(minutes=1)                  # time alone changes nothing shown
    assert client.get("/coord/board/rows", headers={"If-None-Match": tag}).status_code == 304
    with app.app_context():                             # the missing one arrives
        db.session.add(Attendance(volunteer_id=night["away"], shift_id=night["shift_id"], status="open",
                                  check_in_at=from_local(datetime(2027, 2, 5, 18, 21)), work_date=date(2027, 2, 5)))
        db.session.commit()
    changed = client.get("/coord/board/rows", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert 'id="missing"' not in changed.get_data(as_text=True)


def test_one_points_board_and_back_to_it_after_an_action(client, auth, night, app):  # noqa: F811
    auth.login()
    with app.app_context():
        point_id = db.session.get(Attendance, night["att_id"]).point_id
    page = client.get("/coord/board/").get_data(as_text=True)
    assert f'href="/coord/board/?point={point_id}"' in page and 'id="board-point"' in page
    one = client.get(f"/coord/board/?point={point_id}").get_data(as_text=True)
    assert "只看点位" in one and "孙八" in one and "钱七" in one
    assert f'data-src="/coord/board/rows?point={point_id}"' in one
    assert "孙八" in client.get(f"/coord/board/rows?point={point_id}").get_data(as_text=True)
    assert "今晚没有班次" not in one
    token = csrf_from(client, "/coord/board/")
    resp = client.post(f"/coord/board/remind/{night['shift_id']}/{night['away']}",
                       data={"csrf_token": token, "point": point_id})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/coord/board/?point={point_id}")
    assert client.get("/coord/board/?point=999999").status_code == 200   # an unknown point: an empty board


def test_team_leaders_get_the_fragment_and_its_304(client, auth, night):  # noqa: F811
    auth.login("leader1", role="leader")
    first = client.get("/coord/board/rows")
    assert first.status_code == 200
    assert client.get("/coord/board/rows", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
