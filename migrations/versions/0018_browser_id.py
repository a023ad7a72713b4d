"""Scan records keep the hash of the browser's long-lived id, for the shared-device flag

Revision ID: 0018
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('scan_records') as batch:
        batch.add_column(sa.Column('browser_hash', sa.String(64), nullable=True))
    op.create_index('ix_scan_records_browser_time', 'scan_records', ['browser_hash', 'scanned_at'])


def downgrade():
    op.drop_index('ix_scan_records_browser_time', table_name='scan_records')
    with op.batch_alter_table('scan_records') as batch:
        batch.drop_column('browser_hash')
