"""Review fixes (b): the device that linked a Telegram chat; ID numbers left for an admin to check

Revision ID: 0019
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_link_tokens') as batch:
        batch.add_column(sa.Column('device_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_chat_link_tokens_device_id', 'devices', ['device_id'], ['id'],
                                 ondelete='SET NULL')
    with op.batch_alter_table('chat_links') as batch:
        batch.add_column(sa.Column('device_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_chat_links_device_id', 'devices', ['device_id'], ['id'],
                                 ondelete='SET NULL')
        batch.create_index('ix_chat_links_device_id', ['device_id'])
    with op.batch_alter_table('volunteers') as batch:
        batch.add_column(sa.Column('id_number_check', sa.Boolean(), server_default=sa.text('false'),
                                   nullable=False))


def downgrade():
    with op.batch_alter_table('volunteers') as batch:
        batch.drop_column('id_number_check')
    with op.batch_alter_table('chat_links') as batch:
        batch.drop_index('ix_chat_links_device_id')
        batch.drop_constraint('fk_chat_links_device_id', type_='foreignkey')
        batch.drop_column('device_id')
    with op.batch_alter_table('chat_link_tokens') as batch:
        batch.drop_constraint('fk_chat_link_tokens_device_id', type_='foreignkey')
        batch.drop_column('device_id')
