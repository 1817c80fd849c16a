"""People: one row per address, holding the link to all of that person's sessions; a message
kind for the email that brings it; an index on registrations' address key.

Every address that still has a registration with its data gets a person, with a fresh link
(only its digest is stored, as the app makes it). Downgrading drops the table and the
emails of the new kind (the old CHECK constraint would refuse them).

Revision ID: 0006
Revises: 0005
"""

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from flask import current_app

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The message kinds before and after, written out as they are at this revision.
OLD_KINDS = ("confirmation", "waitlisted", "promotion", "cancellation", "reminder", "update",
             "follow_up")
NEW_KINDS = (*OLD_KINDS, "my_link")

registrations = sa.table(
    "registrations",
    sa.column("email_key", sa.String),
    sa.column("anonymised_at", sa.DateTime),
)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _kinds(values) -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_kind"), type_="check")
        batch_op.create_check_constraint("kind", sa.text(_in("kind", values)))


def _digest(nonce: str) -> str:
    # The rule of registration/tokens.py, repeated here so that this migration keeps meaning
    # what it meant when it was written.
    mac = hmac.new(current_app.config["SECRET_KEY"].encode(), b"me-link:" + nonce.encode(),
                   hashlib.sha256).digest()
    return hashlib.sha256(urlsafe_b64encode(mac).rstrip(b"=")).hexdigest()


def upgrade():
    people = op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("token_nonce", sa.String(length=64), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("email_key", name=op.f("uq_people_email_key")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_people_token_digest")),
    )
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.create_index("ix_registrations_email_key", ["email_key"], unique=False)
    _kinds(NEW_KINDS)

    connection = op.get_bind()
    keys = connection.execute(
        sa.select(registrations.c.email_key).distinct()
        .where(registrations.c.anonymised_at.is_(None))
        .order_by(registrations.c.email_key)
    ).scalars().all()
    now = datetime.now(UTC).replace(tzinfo=None)  # stored naive, in UTC, as the app stores it
    rows = []
    for key in keys:
        nonce = secrets.token_urlsafe(24)
        rows.append({"email_key": key, "token_nonce": nonce, "token_digest": _digest(nonce),
                     "created_at": now})
    if rows:
        op.bulk_insert(people, rows)


def downgrade():
    op.execute("DELETE FROM messages WHERE kind = 'my_link'")
    _kinds(OLD_KINDS)
    with op.batch_alter_table("registrations") as batch_op:
        batch_op.drop_index("ix_registrations_email_key")
    op.drop_table("people")
