"""Self-evaluation scoring: per-year weights and the qualitative rows' scores

Revision ID: 0017
Revises: 0014

The 财政绩效自评表 gives each row 分值 and 得分; the weights are a per-year setting (defaults:
budget execution 10, the 14 indicators sharing 90) and the two qualitative indicators are scored by
the coordinator.
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('programme_years', schema=None) as batch_op:
        batch_op.add_column(sa.Column('score_weights', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('qualitative_scores', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('programme_years', schema=None) as batch_op:
        batch_op.drop_column('qualitative_scores')
        batch_op.drop_column('score_weights')
