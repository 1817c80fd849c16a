"""Events get a public UID: a random UUID (UUID4) for the public calendar files, unique across
installations and never derived from the row id. Every existing event gets its own.

Downgrading drops the column (the calendar files then fall back to what the older code wrote).

Revision ID: 0007
Revises: 0006
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

events = sa.table("events", sa.column("id", sa.Integer), sa.column("public_uid", sa.String))


def upgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("public_uid", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    ids = connection.execute(sa.select(events.c.id).order_by(events.c.id)).scalars().all()
    for event_id in ids:
        connection.execute(events.update().where(events.c.id == event_id)
                           .values(public_uid=str(uuid.uuid4())))
    with op.batch_alter_table("events") as batch_op:
        batch_op.alter_column("public_uid", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_events_public_uid"), ["public_uid"])


def downgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_constraint(op.f("uq_events_public_uid"), type_="unique")
        batch_op.drop_column("public_uid")
