"""Channels behind one outbox: delivery attempts, contact preferences, team robots, automatic expenditures

Revision ID: 0014
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('route', sa.String(64), nullable=True))
        batch.add_column(sa.Column('exhausted_status', sa.String(16), nullable=True))
        batch.add_column(sa.Column('bulk', sa.Boolean(), server_default=sa.text('true'), nullable=False))
        batch.add_column(sa.Column('team', sa.String(64), nullable=True))
    with op.batch_alter_table('expenditures') as batch:
        batch.add_column(sa.Column('auto_key', sa.String(32), nullable=True))
        batch.create_unique_constraint('uq_expenditures_auto_key', ['auto_key'])
    op.create_table(
        'delivery_attempts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('outbox_id', sa.Integer(), sa.ForeignKey('outbox.id', ondelete='CASCADE'), nullable=False),
        sa.Column('channel', sa.String(16), nullable=False),
        sa.Column('outcome', sa.String(16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('external_id', sa.String(64), nullable=True),
        sa.Column('provider', sa.String(16), nullable=True),
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('team', sa.String(64), nullable=True),
        sa.Column('segments', sa.Integer(), nullable=True),
        sa.Column('cost', sa.Numeric(12, 4), nullable=True),
        sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_delivery_attempts_outbox_id', 'delivery_attempts', ['outbox_id'])
    op.create_index('ix_delivery_attempts_channel_at', 'delivery_attempts', ['channel', 'attempted_at'])
    op.create_index('ix_delivery_attempts_volunteer_at', 'delivery_attempts', ['volunteer_id', 'attempted_at'])
    op.create_table(
        'contact_preferences',
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('channel_order', sa.String(64), nullable=True),
        sa.Column('sms_opt_out', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'team_robots',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('team', sa.String(64), nullable=False, unique=True),
        sa.Column('webhook_enc', sa.LargeBinary(), nullable=False),
        sa.Column('webhook_masked', sa.String(128), nullable=False),
        sa.Column('updated_by', sa.String(128), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table('team_robots')
    op.drop_table('contact_preferences')
    op.drop_index('ix_delivery_attempts_volunteer_at', table_name='delivery_attempts')
    op.drop_index('ix_delivery_attempts_channel_at', table_name='delivery_attempts')
    op.drop_index('ix_delivery_attempts_outbox_id', table_name='delivery_attempts')
    op.drop_table('delivery_attempts')
    with op.batch_alter_table('expenditures') as batch:
        batch.drop_constraint('uq_expenditures_auto_key', type_='unique')
        batch.drop_column('auto_key')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('team')
        batch.drop_column('bulk')
        batch.drop_column('exhausted_status')
        batch.drop_column('route')
