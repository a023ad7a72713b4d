"""sms_code_requests: every SMS sign-in code request, for any number (a hash), kept two hours

The hourly limit per number reads it, and a number not on the roster now costs the same writes as
one on it, so the page's timing no longer tells whether a number belongs to a volunteer.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sms_code_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sms_code_requests_phone_hash", "sms_code_requests", ["phone_hash"])
    op.create_index("ix_sms_code_requests_created_at", "sms_code_requests", ["created_at"])


def downgrade():
    op.drop_index("ix_sms_code_requests_created_at", table_name="sms_code_requests")
    op.drop_index("ix_sms_code_requests_phone_hash", table_name="sms_code_requests")
    op.drop_table("sms_code_requests")
