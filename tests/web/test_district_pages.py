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
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/coord/board/?point={point_id}#m-{night['shift_id']}-{night['away']}")
    assert client.get("/coord/board/?point=999999").status_code == 200   # an unknown point: an empty board


def test_team_leaders_get_the_fragment_and_its_304(client, auth, night):  # noqa: F811
    auth.login("leader1", role="leader")
    first = client.get("/coord/board/rows")
    assert first.status_code == 200
    assert client.get("/coord/board/rows", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def _more_flagged(app, fixture: dict, n: int) -> list[int]:
    """n more flagged records after the fixture's one, a minute apart, every other one without a
    location."""
    from datetime import timedelta
    with app.app_context():
        first = db.session.get(Attendance, fixture["att_id"])
        ids = []
        for i in range(n):
            at = from_local(datetime(2027, 2, 4, 10)) + timedelta(minutes=i)
            att = Attendance(volunteer_id=fixture["away"], event_id=first.event_id, point_id=first.point_id,
                             status="closed", check_in_at=at, check_out_at=at + timedelta(minutes=30),
                             work_date=date(2027, 2, 4), review_status="flagged",
                             flags="no_location" if i % 2 else "outside_geofence")
            db.session.add(att)
            db.session.flush()
            ids.append(att.id)
        db.session.commit()
        return ids


def test_the_review_queue_in_pages_with_its_filters(client, auth, night, app):  # noqa: F811
    import re
    ids = _more_flagged(app, night, 60)                  # 61 waiting: older ones first
    auth.login()
    first = client.get("/coord/attendance/review").get_data(as_text=True)
    assert '<small class="muted" id="queue-count">61</small>' in first
    assert first.count('class="card review-card"') == 50 and f'id="att-{ids[0]}"' in first
    assert "共 61 条待核对" in first
    later = re.search(r'href="(/coord/attendance/review\?cursor=[^"]+)">下一页', first).group(1)
    second = client.get(later.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('class="card review-card"') == 11 and f'id="att-{night["att_id"]}"' in second
    assert f'id="att-{ids[0]}"' not in second and "下一页" not in second and "上一页" in second
    # the filter rides along with the cursor
    flagged = client.get("/coord/attendance/review?flag=no_location").get_data(as_text=True)
    assert flagged.count('class="card review-card"') == 30 and "下一页" not in flagged
    page = client.get("/coord/attendance/review?flag=outside_geofence").get_data(as_text=True)
    assert page.count('class="card review-card"') == 31 and '<small class="muted" id="queue-count">31</small>' in page
    assert client.get("/coord/attendance/review?cursor=nonsense", follow_redirects=True).status_code == 200


def test_bulk_approval_decides_the_page_shown_only(client, auth, night, app):  # noqa: F811
    import re
    ids = _more_flagged(app, night, 60)
    auth.login()
    page = client.get("/coord/attendance/review").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'<input type="hidden" name="ids" value="(\d+)">', page)]
    assert shown == ids[:50]
    token = csrf_from(client, "/coord/attendance/review")
    back = re.search(r'name="back" value="([^"]+)"', page).group(1)
    resp = client.post("/coord/attendance/review", data={"csrf_token": token, "decision": "approved", "ids": shown,
                                                         "back": back}, follow_redirects=True)
    text = resp.get_data(as_text=True)
    assert "已审核 50 条" in text and '<small class="muted" id="queue-count">11</small>' in text
    with app.app_context():
        waiting = db.session.query(Attendance).filter(Attendance.review_status == "flagged").count()
    assert waiting == 11


def test_leaders_still_get_no_review_queue(client, auth, night):  # noqa: F811
    auth.login("leader1", role="leader")
    assert client.get("/coord/attendance/review?cursor=n20270205T100000.000000_1").status_code == 403
