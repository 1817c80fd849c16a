"""The outbox: every email is a row before it is a message on the wire."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import database_now, db
from registration.models import Event, Language, Registration, enum_column


class MessageKind(StrEnum):
    CONFIRMATION = "confirmation"
    WAITLISTED = "waitlisted"
    PROMOTION = "promotion"
    CANCELLATION = "cancellation"
    REMINDER = "reminder"
    UPDATE = "update"
    FOLLOW_UP = "follow_up"
    # The link to all of a person's sessions, which they asked for ("Lost your link?", or a
    # new one after signing out everywhere): about the person, not the session it goes with.
    MY_LINK = "my_link"
    # A message the organisers wrote to a session's seat holders, waiting list or both: not a
    # reminder (an unsubscribe doesn't stop it) and no part of the invite.
    ANNOUNCEMENT = "announcement"


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class IcalMethod(StrEnum):
    """The METHOD of the invite a message carries (RFC 5546)."""

    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


# Kinds only a person with a seat gets: the waiting list hears nothing of these.
SEAT_ONLY_KINDS = frozenset({MessageKind.CONFIRMATION, MessageKind.PROMOTION,
                             MessageKind.REMINDER, MessageKind.FOLLOW_UP})
# Kinds that may carry the join link, to a person with a seat: those above but the follow-up
# (it brings the recording instead), and an update of the invite.
JOIN_LINK_KINDS = (SEAT_ONLY_KINDS - {MessageKind.FOLLOW_UP}) | {MessageKind.UPDATE}
# Kinds the one-click unsubscribe link (List-Unsubscribe) stops; every other email still goes.
UNSUBSCRIBABLE_KINDS = frozenset({MessageKind.REMINDER, MessageKind.FOLLOW_UP})
# Why a message to an address that failed for good (a 5.x.x bounce) is not sent.
BOUNCED = "bounced"
# Kinds that belong to no version of the invite: a newer version never supersedes them.
# An announcement is the organisers' own words, meant as written whatever changed since.
UNVERSIONED_KINDS = frozenset({MessageKind.FOLLOW_UP, MessageKind.MY_LINK,
                               MessageKind.ANNOUNCEMENT})


class Audience(StrEnum):
    """Who an announcement is for."""

    SEATS = "seats"
    WAITING = "waiting"
    BOTH = "both"


class Announcement(db.Model):
    """A message the organisers composed for one session, once; each recipient's outbox row
    points to it (detail {"announcement_id": …}), so its words are stored once and the
    timeline shows one line per announcement."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"),
                                          index=True)
    audience: Mapped[Audience] = mapped_column(enum_column(Audience, "audience", 10))
    subject_en: Mapped[str] = mapped_column(sa.String(200))
    text_en: Mapped[str] = mapped_column(sa.Text)
    # Both or neither: without them every reader gets the English words.
    subject_ja: Mapped[str | None] = mapped_column(sa.String(200))
    text_ja: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    # Random, made by the preview and sent back with "Send": a second send of the same preview
    # (a double click, a resubmitted form) queues nothing more.
    draft_key: Mapped[str] = mapped_column(sa.String(40), unique=True)

    event: Mapped[Event] = relationship()

    def language_for(self, language: str) -> str:
        """The language a reader of this language gets: theirs, else English."""
        return Language.JA if language == Language.JA and self.text_ja else Language.EN

    def words(self, language: str) -> tuple[str, str]:
        """The subject and text in that language (as language_for decides)."""
        if self.language_for(language) == Language.JA:
            return self.subject_ja or self.subject_en, self.text_ja
        return self.subject_en, self.text_en


class Message(db.Model):
    """One email to one registrant, from planned to sent, failed or skipped."""

    __tablename__ = "messages"
    __table_args__ = (
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
        # Each reminder is planned once per registration and slot (notifications.reminders),
        # however many planners run at once.
        sa.Index(
            "uq_messages_slot",
            "registration_id",
            "kind",
            "slot",
            unique=True,
            sqlite_where=sa.text("slot IS NOT NULL"),
            postgresql_where=sa.text("slot IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[MessageKind] = mapped_column(enum_column(MessageKind, "kind", 20))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus, "status", 20),
                                                  default=MessageStatus.PENDING)
    # Fixed when the row is written, so a re-send after a crash carries the same Message-ID.
    message_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    recipient: Mapped[str] = mapped_column(sa.String(320))
    ical_method: Mapped[IcalMethod | None] = mapped_column(
        enum_column(IcalMethod, "ical_method", 10))
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
    # A reminder's slot: its distance before the start and that start
    # ("86400s@2026-07-01T09:00:00+00:00").
    slot: Mapped[str | None] = mapped_column(sa.String(60))

    registration: Mapped[Registration] = relationship()
    event: Mapped[Event] = relationship()


def lease_is_free():
    """The row is held by no dispatcher: no claim, or one whose lease has run out.

    Leases are set and read on the database's clock, never a host's: two hosts whose clocks
    disagree, or a `flask dispatch --now` beside a worker, still see the same leases. (`now`
    decides only what is due.)"""
    return sa.or_(Message.lease_until.is_(None), Message.lease_until < database_now())


class HandledMail(db.Model):
    """An email from the replies mailbox that was acted on (a calendar reply, a bounce), by its
    Message-ID: reading the same email again, or after a crash between acting and moving it,
    never acts twice."""

    __tablename__ = "handled_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Message-ID as sent, or a digest of the whole email when it has none.
    message_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    outcome: Mapped[str] = mapped_column(sa.String(20))
    handled_at: Mapped[datetime]
