"""Statuses and kinds as enums: each CHECK constraint rewritten as the enum type writes it.

The columns keep their VARCHAR lengths; only the constraints' text changes (a NULL pillar or
ical_method passes an IN check without saying so). The values are written out here, as they
were at this revision, so that later changes to the enums need a migration of their own.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, column): the values the column may hold.
VALUES = {
    ("events", "kind"): ("webinar", "workshop", "training", "dialogue"),
    ("events", "pillar"): ("reflect", "exchange", "advocate"),
    ("events", "language"): ("en", "ja"),
    ("events", "status"): ("scheduled", "cancelled"),
    ("registrations", "status"): ("confirmed", "waitlisted", "cancelled"),
    ("registrations", "language"): ("en", "ja"),
    ("messages", "kind"): ("confirmation", "waitlisted", "promotion", "cancellation",
                           "reminder", "update", "follow_up"),
    ("messages", "status"): ("pending", "sent", "failed", "skipped"),
    ("messages", "ical_method"): ("REQUEST", "CANCEL"),
}
# The hand-written checks of 0001-0003 allowed NULL explicitly on these columns.
NULL_SPELLED_OUT = {("events", "pillar"), ("messages", "ical_method")}


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _swap(old: bool) -> None:
    for table in ("events", "registrations", "messages"):
        with op.batch_alter_table(table) as batch_op:
            for (name, column), values in VALUES.items():
                if name != table:
                    continue
                condition = _in(column, values)
                if old and (table, column) in NULL_SPELLED_OUT:
                    condition = f"{column} IS NULL OR {condition}"
                batch_op.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
                batch_op.create_check_constraint(column, sa.text(condition))


def upgrade():
    _swap(old=False)


def downgrade():
    _swap(old=True)
