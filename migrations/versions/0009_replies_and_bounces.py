"""Replies and bounces read from a mailbox: each registration's calendar answer (rsvp), an
undeliverable mark on a person's address, and the emails already acted on.

Downgrading drops them (and with them the answers, the marks and the record of what was read).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RSVP = ("accepted", "tentative", "declined")


def upgrade():
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.add_column(sa.Column("rsvp", sa.String(20), nullable=True))
        batch_op.add_column(sa.Column("rsvp_at", sa.DateTime(), nullable=True))
        batch_op.create_check_constraint(
            "rsvp", sa.text(f"rsvp IN ({', '.join(repr(value) for value in RSVP)})"))
    with op.batch_alter_table("people") as batch_op:
        batch_op.add_column(sa.Column("undeliverable_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("undeliverable_reason", sa.String(500), nullable=True))
    op.create_table(
        "handled_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handled_mail")),
        sa.UniqueConstraint("message_key", name=op.f("uq_handled_mail_message_key")),
    )


def downgrade():
    op.drop_table("handled_mail")
    with op.batch_alter_table("people") as batch_op:
        batch_op.drop_column("undeliverable_reason")
        batch_op.drop_column("undeliverable_at")
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.drop_constraint(op.f("ck_registrations_rsvp"), type_="check")
        batch_op.drop_column("rsvp_at")
        batch_op.drop_column("rsvp")
