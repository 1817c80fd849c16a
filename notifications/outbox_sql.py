"""Outbox rows written set-based, one INSERT … SELECT for many registrations: the pieces each
such statement needs on both databases."""

import uuid

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from notifications.models import Message


def message_ids(registration_id) -> sa.ColumnElement:
    """Message-IDs for the rows of one INSERT … SELECT, built in SQL: a random nonce of this
    statement and the registration's id (at most one row per registration in a statement), so
    each is unique and none can be guessed from another."""
    domain = current_app.config["MAIL_FROM"].rpartition("@")[2]
    return (sa.literal(f"<{uuid.uuid4().hex}.") + sa.cast(registration_id, sa.String)
            + sa.literal(f"@{domain}>"))


def insert():
    """The database's own INSERT on the outbox (it has ON CONFLICT on both)."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(Message)


def typed(value, column) -> sa.ColumnElement:
    """A value for a column of the SELECT, bound as that column's type."""
    return sa.literal(value, column.type)
