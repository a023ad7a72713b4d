from app import create_app
from tests.factories import csv_bytes
from services.imports import import_points, import_shifts


def test_healthz_ok(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_healthz_503_when_database_is_down(tmp_path):
    # Nothing listens on port 1: the connection is refused at once.
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path),
                      "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"})
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "error" and "database" in body["reason"]


def _programme(session):
    import_points(session, csv_bytes([["code", "name", "lat", "lon"], ["P1", "一号点", 31.07, 121.50],
                                      ["P2", "二号点", None, None]]), "p.csv")
    import_shifts(session, csv_bytes([["event", "point_code", "start", "end", "capacity"],
                                      ["春节", "P1", "2027-02-05 18:00", "2027-02-05 22:00", 8]]), "s.csv")


def test_points_and_events_endpoints(client, session):
    _programme(session)
    points = client.get("/api/v1/points").get_json()
    assert [p["code"] for p in points] == ["P1", "P2"]
    assert points[0]["name"] == "一号点" and points[0]["lat"] == 31.07
    assert client.get("/api/v1/points/P2").get_json()["lat"] is None
    events = client.get("/api/v1/events").get_json()
    assert events[0]["name"] == "春节" and events[0]["shift_count"] == 1
    detail = client.get(f"/api/v1/events/{events[0]['id']}").get_json()
    assert detail["shifts"][0]["starts_at"] == "2027-02-05T10:00:00+00:00"
    assert detail["shifts"][0]["point_code"] == "P1"


def test_api_errors_have_the_project_shape(client):
    resp = client.get("/api/v1/points/NOPE")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert set(resp.get_json()["error"]) == {"code", "message"}
    resp = client.post("/api/v1/points")
    assert resp.status_code == 405 and "error" in resp.get_json()


def test_openapi_document_is_generated(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/points" in spec["paths"] and "/api/v1/events/{event_id}" in spec["paths"]


def test_html_pages_are_chinese_and_errors_are_html(client, session):
    _programme(session)
    page = client.get("/").get_data(as_text=True)
    assert "平安马甲" in page and "一号点" in page and "春节" in page
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "页面不存在" in missing.get_data(as_text=True)


def test_language_switch_only_redirects_locally(client):
    resp = client.get("/lang/en?next=https://evil.example/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert "lang=en" in resp.headers.get("Set-Cookie", "")


def test_static_assets_are_self_hosted(client):
    page = client.get("/").get_data(as_text=True)
    assert "cdn" not in page.lower() and "http://" not in page.split("<body>")[0].replace("http://pingan.test", "")
    css = client.get("/static/css/app.css")
    assert css.status_code == 200
    css.close()


def test_api_errors_without_a_message_of_their_own_are_said_in_the_phones_language(client):
    """The offline queue lists a refused scan's message to the volunteer: never Werkzeug's English
    developer sentence on a Chinese phone, and always that nothing was changed."""
    zh = client.post("/api/v1/scans", json={"token": "x", "lat": "north"}, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 422
    error = zh.get_json()["error"]
    assert error["message"] == "提交的内容有误（见 details.fields），没有做任何修改"
    assert error["details"]["fields"] == {"json": {"lat": ["Not a valid number."]}}
    en = client.post("/api/v1/scans", data="{bad", content_type="application/json", headers={"Accept-Language": "en"})
    assert en.status_code == 400 and "nothing was changed" in en.get_json()["error"]["message"]
    assert client.get("/api/v1/nothing-here").get_json()["error"]["message"] == "找不到这个地址"


def test_switching_language_keeps_the_page_and_its_query(client):
    """A coordinator on the board of one point, or on page 3 of a list, stays there."""
    page = client.get("/signin?next=/me").get_data(as_text=True)
    assert "/lang/en?next=/signin?next%3D/me" in page or "/lang/en?next=/signin%3Fnext%3D/me" in page
    resp = client.get("/lang/en?next=/signin%3Fnext%3D/me")
    assert resp.status_code == 302 and resp.headers["Location"] == "/signin?next=/me"
