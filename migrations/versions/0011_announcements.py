"""Announcements: a message the organisers compose for a session's seat holders, waiting list
or both, stored once; each recipient's outbox row (a new message kind) points to it.

Downgrading drops the table and the emails of the new kind (the old CHECK constraint would
refuse them).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The message kinds before and after, written out as they are at this revision.
OLD_KINDS = ("confirmation", "waitlisted", "promotion", "cancellation", "reminder", "update",
             "follow_up", "my_link")
NEW_KINDS = (*OLD_KINDS, "announcement")
AUDIENCES = ("seats", "waiting", "both")


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _kinds(values) -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_kind"), type_="check")
        batch_op.create_check_constraint("kind", sa.text(_in("kind", values)))


def upgrade():
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=10), nullable=False),
        sa.Column("subject_en", sa.String(length=200), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("subject_ja", sa.String(length=200), nullable=True),
        sa.Column("text_ja", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("draft_key", sa.String(length=40), nullable=False),
        sa.CheckConstraint(_in("audience", AUDIENCES), name=op.f("ck_announcements_audience")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE",
                                name=op.f("fk_announcements_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
        sa.UniqueConstraint("draft_key", name=op.f("uq_announcements_draft_key")),
    )
    op.create_index("ix_announcements_event_id", "announcements", ["event_id"])
    _kinds(NEW_KINDS)


def downgrade():
    op.execute("DELETE FROM messages WHERE kind = 'announcement'")
    _kinds(OLD_KINDS)
    op.drop_index("ix_announcements_event_id", table_name="announcements")
    op.drop_table("announcements")
