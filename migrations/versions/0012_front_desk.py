"""The bot as a front desk: notice drafts, appended survey comments, a leader's team

Revision ID: 0012
Revises: 0006

Notice drafts move from the bot's memory to a table (one ending each, survives a restart); survey
comments become rows of their own (appended with their time, never overwritten) and a score opens
a short comment window; a team leader's account names the team whose leave requests they hear of.
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=64), nullable=True))
    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comment_until', sa.DateTime(timezone=True), nullable=True))
    op.create_table('survey_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('answer_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['answer_id'], ['survey_answers.id'], name=op.f('fk_survey_comments_answer_id_survey_answers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_comments'))
    )
    with op.batch_alter_table('survey_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_comments_answer_id'), ['answer_id'], unique=False)
    # A comment written before comments had their own table is kept as the first comment.
    op.execute("INSERT INTO survey_comments (answer_id, text, channel, created_at) "
               "SELECT id, comment, channel, answered_at FROM survey_answers WHERE comment IS NOT NULL")
    op.create_table('notice_drafts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_notice_drafts_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notice_drafts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_drafts'))
    )
    with op.batch_alter_table('notice_drafts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_drafts_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('notice_drafts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_drafts_user_id'))
    op.drop_table('notice_drafts')
    with op.batch_alter_table('survey_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_comments_answer_id'))
    op.drop_table('survey_comments')
    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.drop_column('comment_until')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('team')
