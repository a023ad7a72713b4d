"""The programme year and its ledgers: the evidence behind the 14 performance indicators."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (Date, Float, ForeignKey, Integer, LargeBinary, Numeric, String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.types import UTCDateTime, utcnow

Money = Numeric(12, 2)

LINE_WORK_FUND = "work_fund"
LINE_INSURANCE = "insurance"
LINE_EQUIPMENT = "equipment"
BUDGET_LINES = (LINE_WORK_FUND, LINE_INSURANCE, LINE_EQUIPMENT)


class ProgrammeYear(db.Model):
    """Targets and settings of one programme year (defaults from the 2024 project description)."""

    __tablename__ = "programme_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    target_volunteers: Mapped[int] = mapped_column(Integer, default=500)
    target_hours: Mapped[float] = mapped_column(Float, default=6.0)
    target_satisfaction: Mapped[float] = mapped_column(Float, default=0.9)
    target_work_fund: Mapped[Decimal] = mapped_column(Money, default=Decimal("15000"))
    target_insurance_per_person: Mapped[Decimal] = mapped_column(Money, default=Decimal("10"))
    target_equipment_per_person: Mapped[Decimal] = mapped_column(Money, default=Decimal("60"))
    target_equipment_sets: Mapped[int] = mapped_column(Integer, default=500)
    target_complaints: Mapped[int] = mapped_column(Integer, default=0)
    insurance_due: Mapped[date | None] = mapped_column(Date)
    equipment_due: Mapped[date | None] = mapped_column(Date)
    survey_round_id: Mapped[int | None] = mapped_column(ForeignKey("survey_rounds.id"))
    hours_rule: Mapped[str] = mapped_column(String(8), default="mean")  # mean | every
    assessment_safety: Mapped[str | None] = mapped_column(Text)        # indicator 12
    assessment_mechanism: Mapped[str | None] = mapped_column(Text)     # indicator 13
    assessed_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BudgetLine(db.Model):
    __tablename__ = "budget_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (UniqueConstraint("year", "code"),)


class Expenditure(db.Model):
    __tablename__ = "expenditures"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    line: Mapped[str] = mapped_column(String(16))
    spent_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    payee: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(255))
    voucher_no: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set on the automatic, read-only rows the service writes itself ("messaging:2026-11").
    auto_key: Mapped[str | None] = mapped_column(String(32), unique=True)


class InsurancePolicy(db.Model):
    __tablename__ = "insurance_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    insurer: Mapped[str] = mapped_column(String(128))
    policy_no: Mapped[str] = mapped_column(String(64), unique=True)
    cover_start: Mapped[date] = mapped_column(Date)
    cover_end: Mapped[date] = mapped_column(Date)
    premium_per_person: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InsuranceCover(db.Model):
    """A volunteer named on a policy (the insurer's list, imported by phone or ID number)."""

    __tablename__ = "insurance_covers"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("insurance_policies.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)

    __table_args__ = (UniqueConstraint("policy_id", "volunteer_id"),)


class EquipmentDelivery(db.Model):
    __tablename__ = "equipment_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier: Mapped[str] = mapped_column(String(128))
    delivered_on: Mapped[date] = mapped_column(Date, index=True)
    sets: Mapped[int] = mapped_column(Integer)
    unit_cost: Mapped[Decimal] = mapped_column(Money)
    passed_sets: Mapped[int] = mapped_column(Integer)   # sets that passed inspection
    inspection_note: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EquipmentIssue(db.Model):
    """A kit handed to a volunteer (and whether it came back or was lost)."""

    __tablename__ = "equipment_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    issued_on: Mapped[date] = mapped_column(Date)
    kit: Mapped[str] = mapped_column(String(64), default="马甲套装")
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued | returned | lost
    returned_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Complaint(db.Model):
    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_on: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(64))
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id"))
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id"))
    point_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_points.id"))
    description: Mapped[str] = mapped_column(Text)
    finding: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProgrammeDocument(db.Model):
    """Rules, plans and meeting records on file (evidence for indicator 13)."""

    __tablename__ = "programme_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # rule | plan | meeting | other
    title: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(128))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(db.Model):
    """Every scheduled job run: evidence that the long-term mechanism runs (indicator 13)."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16), default="running")  # ok | error | running
    detail: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(64))
