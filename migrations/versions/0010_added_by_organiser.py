"""Attendees added by hand: which organiser added a registration in the console.

A registration the person made themselves has none; deleting the organiser's account leaves
the registration and forgets who added it. Downgrading drops the column (and with it who
added whom).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.add_column(sa.Column("added_by_organiser_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_registrations_added_by_organiser_id_organisers"), "organisers",
            ["added_by_organiser_id"], ["id"], ondelete="SET NULL")


def downgrade():
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.drop_constraint(op.f("fk_registrations_added_by_organiser_id_organisers"),
                                 type_="foreignkey")
        batch_op.drop_column("added_by_organiser_id")
