"""Scoring the year-end 财政绩效自评表: 分值 and 得分 per row, the overall score, deviation notes.

The finance office scores a programme out of 100: budget execution (预算执行率) and the 14
performance indicators. The weights are a per-year setting (`ProgrammeYear.score_weights`); by
default budget execution has 10 points and the 14 indicators share 90, rounded to whole points so
that they still add up to 90. A met row scores its full points; an unmet quantitative row scores in
proportion to how far it got (never more than its points); a qualitative row (12, 13) scores what
the coordinator records (`ProgrammeYear.qualitative_scores`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from services.errors import DomainError
from services.i18n import _
from services.indicators import GREEN, IndicatorReport, IndicatorRow
from services.programme import budget, programme_year

BUDGET_KEY = "budget"
BUDGET_POINTS = 10.0
INDICATOR_POINTS = 90
QUALITATIVE = (12, 13)
# Rows whose value is a cost or a count that must stay under its target.
AT_MOST = (1, 2, 3, 11)


def default_weights() -> dict[str, float]:
    """10 for budget execution; 90 shared by the 14 indicators, whole points adding up to 90."""
    base, extra = divmod(INDICATOR_POINTS, 14)
    weights = {BUDGET_KEY: BUDGET_POINTS}
    for number in range(1, 15):
        weights[str(number)] = float(base + (1 if number <= extra else 0))
    return weights


def weights_for(session: Session, year: int) -> dict[str, float]:
    stored = programme_year(session, year).score_weights
    weights = default_weights()
    if stored:
        weights.update({k: float(v) for k, v in json.loads(stored).items() if k in weights})
    return weights


def qualitative_scores_for(session: Session, year: int) -> dict[int, float]:
    stored = programme_year(session, year).qualitative_scores
    return {int(k): float(v) for k, v in json.loads(stored).items()} if stored else {}


def set_weights(session: Session, year: int, weights: dict[str, object], *, commit: bool = True) -> dict[str, float]:
    """Store the year's weights; they must be numbers from 0 to 100 adding up to 100."""
    parsed: dict[str, float] = {}
    for key in default_weights():
        try:
            value = float(str(weights.get(key, "")).strip())
        except ValueError:
            raise DomainError("bad_weight", _("分值必须是数字")) from None
        if not 0 <= value <= 100:
            raise DomainError("bad_weight", _("分值必须在 0 到 100 之间"))
        parsed[key] = value
    if abs(sum(parsed.values()) - 100) > 0.001:
        raise DomainError("bad_weight_total", _("分值合计必须是 100 分（现在是 %(t)s 分）", t=f"{sum(parsed.values()):g}"))
    row = programme_year(session, year)
    row.score_weights = json.dumps(parsed, sort_keys=True)
    if commit:
        session.commit()
    return parsed


def set_qualitative_scores(session: Session, year: int, scores: dict[int, object], *,
                           commit: bool = True) -> dict[int, float]:
    """The coordinator's scores of the qualitative rows (12, 13); blank means not scored yet."""
    weights = weights_for(session, year)  # as just set, when called after `set_weights(commit=False)`
    parsed: dict[int, float] = {}
    for number in QUALITATIVE:
        raw = str(scores.get(number, "") or "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise DomainError("bad_score", _("得分必须是数字")) from None
        if not 0 <= value <= weights[str(number)]:
            raise DomainError("bad_score", _("指标 %(n)d 的得分必须在 0 到 %(p)s 之间", n=number, p=f"{weights[str(number)]:g}"))
        parsed[number] = value
    row = programme_year(session, year)
    row.qualitative_scores = json.dumps({str(k): v for k, v in parsed.items()}) if parsed else None
    if commit:
        session.commit()
    return parsed


@dataclass(frozen=True)
class ScoredRow:
    row: IndicatorRow
    points: float
    score: float | None  # None: a qualitative row the coordinator has not scored yet
    actual_text: str
    deviation: str


@dataclass(frozen=True)
class BudgetExecution:
    planned: Decimal
    spent: Decimal
    points: float
    score: float

    @property
    def rate(self) -> float:
        return float(self.spent / self.planned) if self.planned else 0.0


@dataclass(frozen=True)
class Evaluation:
    budget: BudgetExecution | None
    rows: list[ScoredRow]

    @property
    def total(self) -> float:
        scores = [r.score or 0.0 for r in self.rows] + ([self.budget.score] if self.budget else [])
        return round(sum(scores), 2)

    @property
    def unscored(self) -> list[int]:
        return [r.row.number for r in self.rows if r.score is None]


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def target_number(target: str) -> float | None:
    """The number of a target as written ("=500 人" → 500, "≥90%" → 0.9, "=100%" → 1.0)."""
    match = _NUMBER.search(target or "")
    if not match:
        return None
    value = float(match.group().replace(",", ""))
    return value / 100 if "%" in target else value


def _ratio(row: IndicatorRow) -> float:
    """The share of its points an unmet quantitative row earns (0..1)."""
    target = target_number(row.target)
    value = row.value
    if value is None or target is None:
        return 0.0
    value = float(value)
    if row.number in AT_MOST:
        if value <= target:  # unmet yet within the limit: nothing recorded to judge (no policy, no issue)
            return 0.0
        return max(0.0, target / value) if target > 0 else 0.0
    if row.number == 6 and row.evidence.get("rule") == "every":
        return max(0.0, min(1.0, float(row.evidence["share_at_target"])))
    return max(0.0, min(1.0, value / target)) if target > 0 else 0.0


def equals_text(row: IndicatorRow) -> str:
    """For an "=" target: the actual against the target, with the over/under ("501 人，超出 1 人")."""
    target = target_number(row.target)
    if target is None or row.value is None:
        return row.actual
    # The unit is what follows the number: "=500 人" → "人", and on an English page "= 500 people".
    unit = re.sub(r"^[=≤≥<>]?\s*[\d,.]+\s*", "", row.target.strip())
    if "%" in row.target:
        diff = round((float(row.value) - target) * 100, 1)
        actual, diff_text = f"{float(row.value) * 100:.1f}%", _("%(d)s 个百分点", d=f"{abs(diff):g}")
    else:
        diff = float(row.value) - target
        actual, diff_text = f"{float(row.value):g} {unit}".strip(), f"{abs(diff):g} {unit}".strip()
    if diff > 0:
        return _("%(a)s，超出 %(d)s", a=actual, d=diff_text)
    if diff < 0:
        return _("%(a)s，差 %(d)s", a=actual, d=diff_text)
    return _("%(a)s，与指标值一致", a=actual)


def evaluate(session: Session, report: IndicatorReport) -> Evaluation:
    weights = weights_for(session, report.year)
    qualitative = qualitative_scores_for(session, report.year)
    lines = budget(session, report.year)
    planned = sum((b.amount for b in lines), Decimal(0))
    spent = sum((b.spent for b in lines), Decimal(0))
    points = weights[BUDGET_KEY]
    rate = float(spent / planned) if planned else 0.0
    execution = BudgetExecution(planned, spent, points, round(min(1.0, rate) * points, 2))
    return Evaluation(execution, score_rows(report, weights, qualitative))


def score_rows(report: IndicatorReport, weights: dict[str, float] | None = None,
               qualitative: dict[int, float] | None = None) -> list[ScoredRow]:
    weights = weights or default_weights()
    qualitative = qualitative or {}
    scored = []
    for row in report.rows:
        points = weights[str(row.number)]
        if row.number in QUALITATIVE:
            score = qualitative.get(row.number)  # never guessed: the coordinator scores it
        elif row.status == GREEN:
            score = points
        else:
            score = round(points * _ratio(row), 2)
        actual = equals_text(row) if row.target.startswith("=") else row.actual
        deviation = "" if row.status == GREEN and (score is None or score >= points) else deviation_note(row)
        if row.number in QUALITATIVE and score is None:
            deviation = _("待评分：请在年度设置中填写得分") + ("；" + deviation if deviation else "")
        scored.append(ScoredRow(row, points, score, actual, deviation))
    return scored


def deviation_note(row: IndicatorRow) -> str:
    ev = row.evidence or {}
    parts = [row.note] if row.note else []
    if row.number == 6 and ev.get("below_count"):
        parts.append(_("%(n)d 名志愿者未达到目标时长（名单见系统）", n=ev["below_count"]))
    elif row.number in (9, 10) and ev.get("late_count"):
        parts.append(_("%(n)d 名志愿者未按时完成", n=ev["late_count"]))
    elif row.number == 7 and ev.get("flagged"):
        parts.append(_("%(n)d 条签到记录待核对", n=ev["flagged"]))
    elif row.number == 11 and ev.get("complaints"):
        parts.append(_("投诉登记 %(n)d 件，处理情况见投诉台账", n=ev["complaints"]))
    elif row.status == "amber":
        parts.append(_("年度进行中，按进度评估"))
    else:
        parts.append(_("未达到年度指标值"))
    return "；".join(p for p in parts if p)
