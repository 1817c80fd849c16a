"""The outbox: every email is a row before it is a message on the wire."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import database_now, db
from registration.models import Event, Registration, _in

MESSAGE_KINDS = (
    "confirmation", "waitlisted", "promotion", "cancellation", "reminder", "update", "follow_up"
)
MESSAGE_STATUSES = ("pending", "sent", "failed", "skipped")


class Message(db.Model):
    """One email to one registrant, from planned to sent, failed or skipped."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", MESSAGE_KINDS), name="kind"),
        sa.CheckConstraint(_in("status", MESSAGE_STATUSES), name="status"),
        sa.CheckConstraint("ical_method IS NULL OR ical_method IN ('REQUEST', 'CANCEL')",
                           name="ical_method"),
        # The dispatcher's only question, "what is due?", answered from this index alone.
        sa.Index(
            "ix_messages_due",
            "due_at",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_messages_registration", "registration_id", "kind", "created_at"),
        # One follow-up per registration, ever: setting the recording link again sends nothing.
        sa.Index(
            "uq_messages_follow_up",
            "registration_id",
            unique=True,
            sqlite_where=sa.text("kind = 'follow_up'"),
            postgresql_where=sa.text("kind = 'follow_up'"),
        ),
        sa.Index("ix_messages_event", "event_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    # Fixed when the row is written, so a re-send after a crash carries the same Message-ID.
    message_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    recipient: Mapped[str] = mapped_column(sa.String(320))
    ical_method: Mapped[str | None] = mapped_column(sa.String(10))
    ical_sequence: Mapped[int | None]
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    # The message may be sent until then; after that it is skipped as expired.
    expires_at: Mapped[datetime]
    claim_token: Mapped[str | None] = mapped_column(sa.String(40))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_attempt_at: Mapped[datetime | None]
    last_reply: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime | None]
    skip_reason: Mapped[str | None] = mapped_column(sa.String(200))
    # What the email needs beyond the row: a reminder's offset, the old time of a reschedule…
    detail: Mapped[dict | None] = mapped_column(sa.JSON)
    # Every attempt: when, the outcome and the server's reply.
    attempt_log: Mapped[list | None] = mapped_column(sa.JSON)

    registration: Mapped[Registration] = relationship()
    event: Mapped[Event] = relationship()


def lease_is_free():
    """The row is held by no dispatcher: no claim, or one whose lease has run out.

    Leases are set and read on the database's clock, never a host's: two hosts whose clocks
    disagree, or a `flask dispatch --now` beside a worker, still see the same leases. (`now`
    decides only what is due.)"""
    return sa.or_(Message.lease_until.is_(None), Message.lease_until < database_now())
