"""Reminders planned when they fall due: each reminder row names its slot (its offset and the
start it belongs to), one per registration and slot; an event records when its start last moved,
and the last slot written for all its seat holders.

Upgrading gives every reminder already written its slot, so the planner never writes it a second
time (of two rows for the same slot, a superseded one and its replacement, the newer keeps it),
and takes each event's last change as the moment its time last changed.
Downgrading drops the columns: reminders not yet due are then not rows, and the older code
would not plan them.

Revision ID: 0012
Revises: 0011
"""

import json
from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Offsets as configured at this revision ("7d", "1h", "90m"), written out here.
UNITS = {"d": "days", "h": "hours", "m": "minutes"}

messages = sa.table(
    "messages",
    sa.column("id", sa.Integer),
    sa.column("registration_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("due_at", sa.DateTime),
    sa.column("detail", sa.Text),
    sa.column("slot", sa.String),
)


def _slot(due_at, detail) -> str | None:
    """The slot key the planner gives a reminder of this offset due then, as it writes it."""
    if isinstance(detail, str):
        detail = json.loads(detail)
    label = (detail or {}).get("offset")
    if not label or label[-1] not in UNITS or not label[:-1].isdigit():
        return None
    before = timedelta(**{UNITS[label[-1]]: int(label[:-1])})
    starts_at = due_at.replace(tzinfo=UTC) + before
    return f"{int(before.total_seconds())}s@{starts_at.isoformat()}"


def upgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("time_changed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("reminders_settled", sa.String(length=60), nullable=True))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("slot", sa.String(length=60), nullable=True))
    bind = op.get_bind()
    # The older code planned no reminder due before an event's last change (a reschedule
    # superseded them and planned only those still ahead); the planner must not either.
    bind.execute(sa.text("UPDATE events SET time_changed_at = updated_at"))
    rows = bind.execute(
        sa.select(messages.c.id, messages.c.registration_id, messages.c.due_at,
                  messages.c.detail)
        .where(messages.c.kind == "reminder")
        .order_by(messages.c.id.desc())
    )
    seen, keyed = set(), []
    for message_id, registration_id, due_at, detail in rows:
        slot = _slot(due_at, detail)
        if slot is not None and (registration_id, slot) not in seen:
            seen.add((registration_id, slot))
            keyed.append({"row": message_id, "key": slot})
    if keyed:
        bind.execute(
            messages.update().where(messages.c.id == sa.bindparam("row"))
            .values(slot=sa.bindparam("key")),
            keyed,
        )
    op.create_index("uq_messages_slot", "messages", ["registration_id", "kind", "slot"],
                    unique=True, sqlite_where=sa.text("slot IS NOT NULL"),
                    postgresql_where=sa.text("slot IS NOT NULL"))


def downgrade():
    op.drop_index("uq_messages_slot", table_name="messages")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("slot")
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("reminders_settled")
        batch_op.drop_column("time_changed_at")
