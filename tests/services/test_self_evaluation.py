"""Item 6 of issue 12: the 财政绩效自评表 with 分值/得分, "=" targets written as text and a print
layout that LibreOffice renders on one landscape A4 page."""
from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook

from models import Volunteer
from services.errors import DomainError
from services.exports import self_evaluation_xlsx
from services.indicators import IndicatorReport, IndicatorRow, compute_indicators
from services.programme import add_expenditure, programme_year, update_year
from services.self_evaluation import (default_weights, equals_text, evaluate, score_rows, set_qualitative_scores,
                                      set_weights, weights_for)

Y = 2025
TODAY = date(2026, 1, 10)


def _volunteers(session, n: int) -> None:
    for i in range(n):
        session.add(Volunteer(name=f"志愿者{i}", phone=f"139{i:08d}", team="塘口居委", joined_on=date(Y, 1, 1)))
    session.commit()


def test_default_weights_give_budget_10_and_the_indicators_90_in_whole_points():
    w = default_weights()
    assert w["budget"] == 10
    assert sum(w[str(n)] for n in range(1, 15)) == 90
    assert {w[str(n)] for n in range(1, 15)} == {6, 7}


def test_weights_are_a_per_year_setting_and_must_add_up_to_100(session):
    w = {k: str(v) for k, v in default_weights().items()}
    w["budget"], w["1"] = "5", "12"
    set_weights(session, Y, w)
    assert weights_for(session, Y)["budget"] == 5 and weights_for(session, Y)["1"] == 12
    assert weights_for(session, Y + 1)["budget"] == 10
    w["budget"] = "20"
    with pytest.raises(DomainError) as exc:
        set_weights(session, Y, w)
    assert exc.value.code == "bad_weight_total"
    assert weights_for(session, Y)["budget"] == 5


def _row(number, target, value, status, actual="", **kw):
    return IndicatorRow(number, "产出指标", "数量指标", "x", target, actual or str(value), status, value, **kw)


def test_met_rows_score_full_unmet_in_proportion_capped_and_qualitative_as_recorded():
    rows = [_row(4, "=500 人", 450, "red"), _row(5, "≥500 套", 600, "green"), _row(1, "≤15,000 元", 20000.0, "red"),
            _row(7, "=100%", 0.876, "red"), _row(12, "推进", None, "green"), _row(13, "健全且执行有效", None, "amber")]
    report = IndicatorReport(Y, TODAY, False, rows, {}, {}, [], [])
    scored = {s.row.number: s for s in score_rows(report, default_weights(), {12: 5.5})}
    assert scored[5].score == scored[5].points == 7 and scored[5].deviation == ""
    assert scored[4].score == round(7 * 450 / 500, 2) and scored[4].deviation
    assert scored[1].score == round(7 * 15000 / 20000, 2)
    assert scored[7].score == round(6 * 0.876, 2)
    assert scored[12].score == 5.5
    assert scored[13].score is None and "待评分" in scored[13].deviation


def test_equals_targets_show_the_actual_against_the_target():
    assert equals_text(_row(4, "=500 人", 501, "green")) == "501 人，超出 1 人"
    assert equals_text(_row(4, "=500 人", 480, "red")) == "480 人，差 20 人"
    # The same row computed for an English page: the unit is what follows the number, spaces and all.
    assert equals_text(_row(4, "= 500 people", 501, "green")) == "501 people，超出 1 people"
    assert equals_text(_row(7, "=100%", 0.95, "red")) == "95.0%，差 5 个百分点"
    assert equals_text(_row(7, "=100%", 1.0, "green")) == "100.0%，与指标值一致"


def test_the_table_has_scores_a_total_and_text_targets(session):
    _volunteers(session, 3)
    add_expenditure(session, year=Y, line="work_fund", spent_on=date(Y, 5, 1), amount=Decimal("5000"), description="培训")
    set_qualitative_scores(session, Y, {12: "6", 13: ""})
    report = compute_indicators(session, Y, today=TODAY)
    ws = load_workbook(BytesIO(self_evaluation_xlsx(report, evaluate(session, report)))).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[2][7:9] == ("分值", "得分")
    table = {r[0]: r for r in rows if isinstance(r[0], int)}
    assert len(table) == 14
    assert table[4][4] == "=500 人" and table[4][5] == "3 人，差 497 人"
    assert table[7][4] == "=100%"
    assert ws.cell(row=5 + 6, column=5).data_type == "s"  # row of indicator 7: text, not a formula
    assert table[12][8] == 6 and table[13][8] == "待评分"
    budget = next(r for r in rows if r[2] == "预算执行率")
    assert budget[7] == 10 and budget[8] == round(10 * 5000 / 50000, 2)
    total = next(r for r in rows if r[0] == "总分")
    assert total[7] == 100 and "13" in total[9]
    assert all(t[9] for t in table.values() if t[6] != "已达成")
    assert ws.page_setup.orientation == "landscape" and ws.print_title_rows.replace("$", "") == "3:3"
    assert "A1:J1" in {str(m) for m in ws.merged_cells.ranges}


@pytest.mark.skipif(not shutil.which("soffice"), reason="LibreOffice (soffice) is not installed: "
                    "apt-get install libreoffice-calc-nogui (listed in .ci/run)")
def test_libreoffice_prints_every_target_as_written_on_one_landscape_page(session, tmp_path):
    _volunteers(session, 2)
    update_year(session, Y, target_volunteers=500)
    report = compute_indicators(session, Y, today=TODAY)
    xlsx = tmp_path / "self-evaluation.xlsx"
    xlsx.write_bytes(self_evaluation_xlsx(report, evaluate(session, report)))
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(xlsx)], check=True, capture_output=True, timeout=180)
    pdf = tmp_path / "self-evaluation.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    for row in report.rows:
        assert row.target.replace(" ", "") in text.replace(" ", ""), row.target
    for error in ("Err:", "#NAME?", "#VALUE!", "#REF!"):
        assert error not in text
    assert "=100%" in text.replace(" ", "")
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    assert int(fields["Pages"]) == 1
    width, height = (float(x) for x in fields["Page size"].split("pts")[0].split("x"))
    assert width > height  # landscape
    assert "志愿者满意度" in text and "总分" in text
    if os.environ.get("SCREENSHOTS") == "1":  # the picture in docs/guide-zh.md
        shots = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
        png = subprocess.run(["pdftoppm", "-png", "-r", "70", "-singlefile", str(pdf)], check=True,
                             capture_output=True).stdout
        from tests.e2e.test_coordinator_office import small_png
        small_png(png, shots / "self-evaluation.png")


def test_the_settings_page_saves_weights_and_scores_or_nothing(session, client, auth):
    from tests.conftest import csrf_from

    auth.login("boss", "admin")
    page = client.get(f"/coord/programme/settings?year={Y}").get_data(as_text=True)
    assert 'name="weight_budget" inputmode="decimal" value="10"' in page and 'name="score_12"' in page
    token = csrf_from(client, f"/coord/programme/settings?year={Y}")
    row = programme_year(session, Y)
    form = {"csrf_token": token, "target_volunteers": "480", "target_hours": "6", "target_satisfaction": "90",
            "target_work_fund": "15000", "target_insurance_per_person": "10", "target_equipment_per_person": "60",
            "target_equipment_sets": "500", "insurance_due": "2025-03-31", "equipment_due": "2025-03-31",
            "hours_rule": "mean", "score_12": "5", "score_13": ""}
    form.update({f"weight_{k}": str(v) for k, v in default_weights().items()})
    bad = dict(form, weight_budget="30")  # adds up to 120: refused, and nothing else is saved either
    client.post(f"/coord/programme/settings?year={Y}", data=bad)
    session.expire_all()
    assert programme_year(session, Y).target_volunteers == row.target_volunteers != 480
    assert weights_for(session, Y)["budget"] == 10
    client.post(f"/coord/programme/settings?year={Y}", data=dict(form, weight_budget="15", weight_1="2"))
    session.expire_all()
    assert programme_year(session, Y).target_volunteers == 480
    assert weights_for(session, Y)["budget"] == 15 and weights_for(session, Y)["1"] == 2
    from services.self_evaluation import qualitative_scores_for
    assert qualitative_scores_for(session, Y) == {12: 5.0}
