"""Organiser accounts and the audit log of what they did."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db


class Organiser(db.Model):
    """Someone who may sign in to the console."""

    __tablename__ = "organisers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Case-folded, so "Anna@Example.org" and "anna@example.org" are one account.
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    # Raised at sign-out and password change: every cookie carrying an older value is void.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AuditEntry(db.Model):
    """Who did what, when: every sign-in, export, change and retry."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    organiser_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisers.id", ondelete="SET NULL")
    )
    # The address as known at the time (a failed sign-in has no organiser).
    actor: Mapped[str] = mapped_column(sa.String(320))
    action: Mapped[str] = mapped_column(sa.String(60))
    target: Mapped[str] = mapped_column(sa.String(200), default="")
    detail: Mapped[dict | None] = mapped_column(sa.JSON)
    ip: Mapped[str | None] = mapped_column(sa.String(64))

    organiser: Mapped[Organiser | None] = relationship()
