"""Reminders, updates and follow-ups: new message kinds, message detail and attempt log,
one follow-up per registration, a public SEQUENCE per event.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_KINDS = ("confirmation", "waitlisted", "promotion", "cancellation")
NEW_KINDS = OLD_KINDS + ("reminder", "update", "follow_up")


def _kinds(kinds):
    return "kind IN ({})".format(", ".join(f"'{kind}'" for kind in kinds))


def upgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(
            sa.Column("ical_sequence", sa.Integer(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("attempt_log", sa.JSON(), nullable=True))
        batch_op.drop_constraint(op.f("ck_messages_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds(NEW_KINDS))
        batch_op.create_index(
            "uq_messages_follow_up",
            ["registration_id"],
            unique=True,
            sqlite_where=sa.text("kind = 'follow_up'"),
            postgresql_where=sa.text("kind = 'follow_up'"),
        )


def downgrade():
    op.execute(sa.text("DELETE FROM messages WHERE kind IN ('reminder', 'update', 'follow_up')"))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("uq_messages_follow_up")
        batch_op.drop_constraint(op.f("ck_messages_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds(OLD_KINDS))
        batch_op.drop_column("attempt_log")
        batch_op.drop_column("detail")

    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("ical_sequence")
