"""scan_records: an index on attendance_id (the review queue's evidence reads a record's scans)

At district scale (a million scan records a year) each record's evidence was a sequential scan of
the whole table: the review queue's page of 50 records took 11 s.

Revision ID: 0021
Revises: 0020
"""
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_scan_records_attendance", "scan_records", ["attendance_id"])


def downgrade():
    op.drop_index("ix_scan_records_attendance", table_name="scan_records")
