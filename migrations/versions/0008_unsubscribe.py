"""Unsubscribing from reminders: when a registration's one-click unsubscribe link was used.

A registration with it set gets no more reminders or follow-ups; its seat and every other
email stay. Downgrading drops the column (and with it who unsubscribed).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.add_column(sa.Column("unsubscribed_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.drop_column("unsubscribed_at")
