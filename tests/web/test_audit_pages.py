"""The coordinators' action log page and the data-subject request buttons (issue 10 items 3, 4)."""
from __future__ import annotations

import io
import json
from datetime import date

from sqlalchemy import select

from extensions import db
from models import CoordinatorAction, PersonalDataExport, Volunteer
from tests.conftest import csrf_from
from tests.factories import csv_bytes


def _vol(app) -> int:
    with app.app_context():
        vol = Volunteer(name="戊一", phone="13944440001", joined_on=date(2025, 1, 1))
        db.session.add(vol)
        db.session.commit()
        return vol.id


def test_actions_are_logged_and_only_admins_see_the_log(app, client, auth):
    vid = _vol(app)
    auth.login()  # a coordinator
    token = csrf_from(client, f"/coord/volunteers/{vid}")
    client.post("/coord/volunteers/import", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(csv_bytes([["姓名", "手机号"], ["己一", "13944440002"]])), "r.csv")})
    client.post(f"/coord/attendance/volunteer/{vid}/adjust",
                data={"csrf_token": token, "hours": "1.5", "work_date": "2025-03-01", "reason": "补登纸质记录"})
    client.post(f"/coord/volunteers/{vid}/card/revoke", data={"csrf_token": token})
    client.post(f"/coord/volunteers/{vid}/withdraw", data={"csrf_token": token, "withdrawn_on": "2025-12-31"})
    client.get("/coord/volunteers/export.xlsx")
    assert client.get("/coord/admin/audit/").status_code == 403
    assert client.post(f"/coord/volunteers/{vid}/privacy/export", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/coord/volunteers/{vid}/privacy/erase",
                       data={"csrf_token": token, "confirm": "1"}).status_code == 403
    with app.app_context():
        got = [(a.action, a.target, a.actor.split(":")[-1]) for a in
               db.session.scalars(select(CoordinatorAction).order_by(CoordinatorAction.id))]
    assert got == [("import", "volunteers", "coord"), ("adjust", f"volunteer:{vid}", "coord"),
                   ("revoke_card", f"volunteer:{vid}", "coord"), ("withdraw", f"volunteer:{vid}", "coord"),
                   ("revoke_device", f"volunteer:{vid}", "coord"), ("export", "roster", "coord")]

    client.post("/coord/logout", data={"csrf_token": token})
    admin = app.test_client()
    from tests.conftest import Auth
    Auth(app, admin).login("boss", role="admin")
    page = admin.get("/coord/admin/audit/?action=adjust").get_data(as_text=True)
    assert "补登纸质记录" in page and "revoke_card" not in page.split("<table")[1].split("</table>")[0]
    token = csrf_from(admin, f"/coord/volunteers/{vid}")
    resp = admin.post(f"/coord/volunteers/{vid}/privacy/export", data={"csrf_token": token})
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert json.loads(resp.data)["profile"]["phone"] == "13944440001"
    import web.indicator_cache
    web.indicator_cache._cache[("a report naming them",)] = None   # this worker's copies go too
    resp = admin.post(f"/coord/volunteers/{vid}/privacy/erase", data={"csrf_token": token, "confirm": "1"})
    assert resp.status_code == 302 and not web.indicator_cache._cache
    with app.app_context():
        assert db.session.get(Volunteer, vid).erased_at is not None
        from services.indicator_snapshots import read_marks
        assert read_marks(db.session).forgotten_at is not None
        assert db.session.scalar(select(PersonalDataExport.what)) == "subject_access_export"
        actions = [a.action for a in db.session.scalars(select(CoordinatorAction))]
    assert actions[-2:] == ["subject_export", "erase"] and actions[0] == "import"
    page = admin.get("/coord/admin/audit/").get_data(as_text=True)
    assert f"volunteer:{vid}" in page and "subject_access_export" in page
