"""Coordinator action log; erased volunteers

Revision ID: 0009
Revises: 0006

`coordinator_actions` is the audit log of coordinators' actions on people's data and hours: no
foreign keys, so nothing cascades into it and it survives a volunteer's erasure.
`volunteers.erased_at` marks a volunteer whose personal data was erased on request (PIPL).
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('coordinator_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coordinator_actions'))
    )
    with op.batch_alter_table('coordinator_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coordinator_actions_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_coordinator_actions_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_coordinator_actions_target'), ['target'], unique=False)
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('coordinator_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coordinator_actions_target'))
        batch_op.drop_index(batch_op.f('ix_coordinator_actions_action'))
        batch_op.drop_index(batch_op.f('ix_coordinator_actions_at'))
    op.drop_table('coordinator_actions')
