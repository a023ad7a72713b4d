"""indicator_snapshots: the year's indicators as last computed, shared by every process; indicator_marks:
the office's last change and the last erasure, which make a stored report stale

The scheduler keeps it fresh and every process that computes the year writes it, so a web worker
that has just started (or whose office has just changed something) answers the indicator pages
from it instead of computing a district's year while a coordinator waits.

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "indicator_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("asked_on", sa.Date(), nullable=False),
        sa.Column("evidence_limit", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.UniqueConstraint("year", "asked_on", "evidence_limit", name="uq_indicator_snapshots_key"),
    )
    op.create_table(
        "indicator_marks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade():
    op.drop_table("indicator_marks")
    op.drop_table("indicator_snapshots")
