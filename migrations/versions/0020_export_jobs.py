"""Export jobs: large exports built in the background by the scheduler process

Revision ID: 0020
Revises: 0019
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

UNFINISHED = "status IN ('queued', 'running')"


def upgrade():
    op.create_table(
        'export_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('params', sa.String(length=255), nullable=False),
        sa.Column('format', sa.String(length=8), nullable=False),
        sa.Column('locale', sa.String(length=8), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('file_name', sa.String(length=64), nullable=True),
        sa.Column('file_size', sa.Integer(), nullable=True),
        sa.Column('claimed_by', sa.String(length=64), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error_code', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('export_jobs') as batch_op:
        batch_op.create_index('ix_export_jobs_user_id', ['user_id'], unique=False)
        batch_op.create_index('ix_export_jobs_status', ['status'], unique=False)
        batch_op.create_index('uq_export_jobs_unfinished', ['user_id', 'kind', 'params', 'format'], unique=True,
                              sqlite_where=sa.text(UNFINISHED), postgresql_where=sa.text(UNFINISHED))


def downgrade():
    with op.batch_alter_table('export_jobs') as batch_op:
        batch_op.drop_index('uq_export_jobs_unfinished', sqlite_where=sa.text(UNFINISHED),
                            postgresql_where=sa.text(UNFINISHED))
        batch_op.drop_index('ix_export_jobs_status')
        batch_op.drop_index('ix_export_jobs_user_id')
    op.drop_table('export_jobs')
