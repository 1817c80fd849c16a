"""Registrations' addresses in their wire form (IDNA 2008 ASCII domain), keyed on it.

Rows written before held the Unicode domain and a key case-folded from it, which made
faß.de and fass.de one domain; a repeat sign-up would no longer find them. Data only: the
schema is unchanged, and downgrading leaves the rewritten addresses as they are (they are
the same mailboxes).

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

registrations = sa.table(
    "registrations",
    sa.column("id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("email_key", sa.String),
)


def _wire(address):
    # The rule of registration/addresses.py, repeated here so that this migration keeps
    # meaning what it meant when it was written.
    result = validate_email(address, check_deliverability=False, allow_smtputf8=True,
                            test_environment=True)
    return result.ascii_email or f"{result.local_part}@{result.ascii_domain}"


def upgrade():
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(registrations.c.id, registrations.c.email).where(registrations.c.email != "")
    ).all()
    for row in rows:
        if row.email.isascii():
            continue  # an ASCII address had the same form and key before
        try:
            wire = _wire(row.email)
        except EmailNotValidError:
            continue
        connection.execute(
            registrations.update().where(registrations.c.id == row.id)
            .values(email=wire, email_key=wire.lower())
        )


def downgrade():
    pass
