"""Scans kept offline on the phone and sent late

Revision ID: 0015
Revises: 0014

`scan_records.received_at` is the server's time a scan arrived and `client_time` the phone's time
it was taken (sent by the offline queue); `scanned_at` stays the time the scan counts at. The
index on `code` serves the coordinators' list of refused offline scans.
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('scan_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('client_time', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_scan_records_code', ['code'], unique=False)
    op.execute("UPDATE scan_records SET received_at = scanned_at")


def downgrade():
    with op.batch_alter_table('scan_records', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_records_code')
        batch_op.drop_column('client_time')
        batch_op.drop_column('received_at')
