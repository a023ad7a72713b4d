from sqlalchemy import func, select

from models import Event, PatrolPoint, Shift, User, Volunteer
from tests.factories import csv_bytes, roster_rows, xlsx_bytes


def test_users_create_prompts_for_password(runner, session):
    result = runner.invoke(args=["users", "create", "wang", "--role", "admin"],
                           input="correct-horse\ncorrect-horse\n")
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User))
    assert (user.username, user.role) == ("wang", "admin")
    assert "correct-horse" not in user.password_hash


def test_users_create_refuses_duplicates_and_short_passwords(runner):
    assert runner.invoke(args=["users", "create", "li"], input="short\nshort\n").exit_code == 1
    assert runner.invoke(args=["users", "create", "li"], input="long-enough\nlong-enough\n").exit_code == 0
    again = runner.invoke(args=["users", "create", "li"], input="long-enough\nlong-enough\n")
    assert again.exit_code == 1 and "已存在" in again.output


def test_import_volunteers_reports_bad_rows_and_exits_1(runner, session, tmp_path):
    rows = roster_rows(5)
    rows[3][1] = "12345"
    path = tmp_path / "roster.xlsx"
    path.write_bytes(xlsx_bytes(rows))
    result = runner.invoke(args=["import", "volunteers", str(path)])
    assert result.exit_code == 1
    assert "第 4 行" in result.output and "手机号" in result.output
    assert session.scalar(select(func.count(Volunteer.id))) == 0
    rows[3][1] = "13900000099"
    path.write_bytes(xlsx_bytes(rows))
    ok = runner.invoke(args=["import", "volunteers", str(path)])
    assert ok.exit_code == 0 and "新增 5" in ok.output


def test_import_points_with_coords_option_and_shifts(runner, session, tmp_path):
    points = tmp_path / "points.csv"
    points.write_bytes(csv_bytes([["code", "name", "lat", "lon"], ["P1", "一号点", 31.17530398364597, 121.531541859215]],
                                 "gb18030"))
    assert runner.invoke(args=["import", "points", str(points), "--coords", "gcj02"]).exit_code == 0
    assert abs(session.scalar(select(PatrolPoint.lat)) - 31.1774276) < 1e-5
    shifts = tmp_path / "shifts.csv"
    shifts.write_bytes(csv_bytes([["活动", "点位编号", "开始时间", "结束时间", "人数"],
                                  ["元旦巡逻", "P1", "2027-01-01 09:00", "2027-01-01 12:00", 6]]))
    result = runner.invoke(args=["import", "shifts", str(shifts)])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Event.name)) == "元旦巡逻"
    assert session.scalar(select(func.count(Shift.id))) == 1


def test_demo_loads_once_and_prints_credentials(runner, session, app):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "500 名志愿者" in result.output and "admin" in result.output and "密码" in result.output
    assert session.scalar(select(func.count(Volunteer.id))) == 500
    assert session.scalar(select(func.count(PatrolPoint.id))) == 12
    again = runner.invoke(args=["demo"])
    assert "未重复载入" in again.output
    assert session.scalar(select(func.count(Volunteer.id))) == 500


def test_demo_auto_respects_the_demo_setting(runner, session, app):
    app.config["DEMO"] = False
    try:
        result = runner.invoke(args=["demo", "--auto"])
    finally:
        app.config["DEMO"] = True
    assert "不载入" in result.output
    assert session.scalar(select(func.count(Volunteer.id))) == 0


def test_roster_export_masks_id_numbers_unless_asked_and_logs_full_exports(runner, session, tmp_path):
    from openpyxl import load_workbook

    from models import PersonalDataExport
    from tests.factories import roster_rows

    rows = roster_rows(3, with_ids=True)
    src = tmp_path / "in.xlsx"
    src.write_bytes(xlsx_bytes(rows, text_columns=[4]))
    assert runner.invoke(args=["import", "volunteers", str(src)]).exit_code == 0
    out = tmp_path / "out.xlsx"
    assert runner.invoke(args=["volunteers", "export", "-o", str(out)]).exit_code == 0
    cells = [c.value for row in load_workbook(out).active.iter_rows() for c in row]
    assert not any(r[4] in cells for r in rows[1:])
    assert rows[1][4][:4] + "*" * 10 + rows[1][4][-4:] in cells
    # (the import compared ID numbers, which is logged too since issue 10; the masked export is not)
    assert session.scalar(select(func.count(PersonalDataExport.id))
                          .where(PersonalDataExport.what != "id_matching_import")) == 0

    result = runner.invoke(args=["volunteers", "export", "-o", str(out), "--with-id-numbers"])
    assert result.exit_code == 0 and "已记录" in result.output
    cells = [c.value for row in load_workbook(out).active.iter_rows() for c in row]
    assert all(r[4] in cells for r in rows[1:])
    log = session.scalar(select(PersonalDataExport).where(PersonalDataExport.what != "id_matching_import"))
    assert (log.what, log.record_count) == ("roster_with_id_numbers", 3) and log.actor.startswith("cli:")
    # the exported file is the import's own layout: it imports back unchanged
    again = runner.invoke(args=["import", "volunteers", str(out)])
    assert again.exit_code == 0 and "未变 3" in again.output, again.output


def test_volunteers_pin_prints_a_new_pin_once_and_stores_its_hash(runner, session):
    from datetime import date

    from models import Volunteer

    session.add(Volunteer(name="张三", phone="13900000001", joined_on=date(2026, 1, 1)))
    session.commit()
    result = runner.invoke(args=["volunteers", "pin", "13900000001"])
    assert result.exit_code == 0, result.output
    pin = result.output.strip().rsplit("：", 1)[1]
    assert len(pin) == 6 and pin.isdigit()
    session.expire_all()
    assert pin not in session.query(Volunteer).one().signin_pin_hash
    assert runner.invoke(args=["volunteers", "pin", "13900000009"]).exit_code == 1


def test_notices_and_surveys_sent_from_the_cli_say_who_is_reached(runner, session):
    """The same honest reach as the web: nobody here has a channel, so only the web inbox."""
    from datetime import date

    from models import Volunteer

    session.add_all([Volunteer(name=f"志愿者{i}", phone=f"1390000000{i}", joined_on=date(2026, 1, 1)) for i in range(3)])
    session.commit()
    notice = runner.invoke(args=["notices", "send", "--text", "今晚 20:00 到岗"])
    assert notice.exit_code == 0 and "已发送 3 人，3 人未绑定任何渠道" in notice.output and "已排队" not in notice.output
    assert runner.invoke(args=["surveys", "create", "二季度"]).exit_code == 0
    survey = runner.invoke(args=["surveys", "send"])
    assert survey.exit_code == 0 and "已发送 3 人" in survey.output and "已排队" not in survey.output
