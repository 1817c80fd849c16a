"""The programme's events and the people registered for them."""

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db


class EventKind(StrEnum):
    WEBINAR = "webinar"
    WORKSHOP = "workshop"
    TRAINING = "training"
    DIALOGUE = "dialogue"


class Pillar(StrEnum):
    REFLECT = "reflect"
    EXCHANGE = "exchange"
    ADVOCATE = "advocate"


class Language(StrEnum):
    EN = "en"
    JA = "ja"


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class RegistrationStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class Rsvp(StrEnum):
    """The attendee's answer to the invite, from their calendar's iTIP REPLY (RFC 5546)."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


# What people read for each stored value, in the page's (or email's) language: defined once
# here, lazy because the page language is known only when a page is rendered.
KIND_LABELS = {
    EventKind.WEBINAR: _l("Webinar"),
    EventKind.WORKSHOP: _l("Workshop"),
    EventKind.TRAINING: _l("Training"),
    EventKind.DIALOGUE: _l("Dialogue"),
}

PILLAR_LABELS = {
    Pillar.REFLECT: _l("Reflect"),
    Pillar.EXCHANGE: _l("Exchange"),
    Pillar.ADVOCATE: _l("Advocate"),
}

# A language's name in the page language (the language switch names each in its own).
LANGUAGE_LABELS = {
    Language.EN: _l("English"),
    Language.JA: _l("Japanese"),
}

AFFILIATIONS = {
    "local_government": _l("Local or regional government"),
    "national_government": _l("National government"),
    "ngo": _l("NGO or civil society"),
    "academia": _l("Academia or research"),
    "business": _l("Business"),
    "international_organisation": _l("International organisation"),
    "other": _l("Other"),
}


def enum_column(enum: type[StrEnum], name: str, length: int) -> sa.Enum:
    """A column of the enum's values: a VARCHAR checked by a CHECK constraint named `name`
    (no database type, so a new member needs no ALTER TYPE); read back as members."""
    return sa.Enum(enum, native_enum=False, create_constraint=True, length=length, name=name,
                   values_callable=lambda members: [member.value for member in members])


class Event(db.Model):
    """One session of the forum: a webinar, workshop, training or dialogue."""

    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
        sa.CheckConstraint("confirmed_count >= 0", name="confirmed_count"),
        sa.Index("ix_events_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[EventKind] = mapped_column(enum_column(EventKind, "kind", 20),
                                            default=EventKind.WEBINAR)
    pillar: Mapped[Pillar | None] = mapped_column(enum_column(Pillar, "pillar", 20))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    capacity: Mapped[int | None]
    # Seats taken, kept by one conditional UPDATE so that concurrent sign-ups never overbook.
    confirmed_count: Mapped[int] = mapped_column(default=0, server_default="0")
    language: Mapped[Language] = mapped_column(enum_column(Language, "language", 2),
                                               default=Language.EN)
    join_url: Mapped[str | None] = mapped_column(sa.String(2000))
    location: Mapped[str | None] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[EventStatus] = mapped_column(enum_column(EventStatus, "status", 20),
                                                default=EventStatus.SCHEDULED)
    recording_url: Mapped[str | None] = mapped_column(sa.String(2000))
    # Raised with every change people must hear of, for the public calendar files.
    ical_sequence: Mapped[int] = mapped_column(default=0, server_default="0")
    # The event's UID in the public calendars: random (UUID4), so that no two installations
    # ever share one, and never the row id; kept for the event's life.
    public_uid: Mapped[str] = mapped_column(sa.String(64), unique=True,
                                            default=lambda: str(uuid.uuid4()))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # When the start last moved: a reminder due before then is not planned (the attendees were
    # told of the new time instead). None: never moved.
    time_changed_at: Mapped[datetime | None]
    # The reminder slot written for all its seat holders once nobody could still join it: the
    # planner passes the session by until its next slot (notifications.reminders).
    reminders_settled: Mapped[str | None] = mapped_column(sa.String(60))

    registrations: Mapped[list["Registration"]] = relationship(back_populates="event")

    @property
    def is_cancelled(self) -> bool:
        return self.status == EventStatus.CANCELLED

    def seats_left(self) -> int | None:
        """Free seats, or None when the event has no cap."""
        if self.capacity is None:
            return None
        return max(self.capacity - self.confirmed_count, 0)

    def has_ended(self, now: datetime) -> bool:
        return now >= self.ends_at

    def is_open_for_signup(self, now: datetime) -> bool:
        return not self.is_cancelled and not self.has_ended(now)

    def is_open_for_cancellation(self, now: datetime) -> bool:
        """Registrants may cancel until the end (also after the organisers cancelled it); after
        that their registrations are the session's history: who had a seat, who is owed the
        recording."""
        return not self.has_ended(now)


class Registration(db.Model):
    """One person's place (or place in the queue) at one event."""

    __tablename__ = "registrations"
    __table_args__ = (
        sa.CheckConstraint("ical_sequence >= 0", name="ical_sequence"),
        # One active registration per person and event; cancelled ones may repeat.
        sa.Index(
            "uq_registrations_active_email",
            "event_id",
            "email_key",
            unique=True,
            sqlite_where=sa.text("status != 'cancelled'"),
            postgresql_where=sa.text("status != 'cancelled'"),
        ),
        # The waiting list, first come first served.
        sa.Index("ix_registrations_queue", "event_id", "status", "registered_at", "id"),
        # One person's registrations across sessions (their own page, the lost-link email).
        sa.Index("ix_registrations_email_key", "email_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    status: Mapped[RegistrationStatus] = mapped_column(
        enum_column(RegistrationStatus, "status", 20))
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320))
    # The address case-folded, for "is this person already registered?".
    email_key: Mapped[str] = mapped_column(sa.String(320))
    organisation: Mapped[str] = mapped_column(sa.String(200))
    affiliation: Mapped[str] = mapped_column(sa.String(40))
    country: Mapped[str] = mapped_column(sa.String(2))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    language: Mapped[Language] = mapped_column(enum_column(Language, "language", 2),
                                               default=Language.EN)
    registered_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    consent_at: Mapped[datetime]
    consent_version: Mapped[str] = mapped_column(sa.String(40))
    # The manage link is an HMAC of this nonce under the server's key; only its digest is kept.
    token_nonce: Mapped[str] = mapped_column(sa.String(64))
    token_digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    ical_uid: Mapped[str] = mapped_column(sa.String(120), unique=True)
    ical_sequence: Mapped[int] = mapped_column(default=0, server_default="0")
    # From the webinar platform's attendee report: None until one is uploaded.
    attended: Mapped[bool | None]
    # Set when the personal data was wiped (retention, or the attendee's own request).
    anonymised_at: Mapped[datetime | None]
    # Set by the one-click unsubscribe link: no more reminders or follow-ups; the seat stays.
    unsubscribed_at: Mapped[datetime | None]
    # The latest answer their calendar sent (notifications.replies), and when it came.
    rsvp: Mapped[Rsvp | None] = mapped_column(enum_column(Rsvp, "rsvp", 20))
    rsvp_at: Mapped[datetime | None]
    # The organiser who added the person by hand in the console (None: the person signed up
    # themselves, or that organiser's account is gone).
    added_by_organiser_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisers.id", ondelete="SET NULL"))

    event: Mapped[Event] = relationship(back_populates="registrations")
    # The person behind the address, for the link to all their sessions; None for rows written
    # before people had one, or once the data was deleted (the key is no address any more).
    person: Mapped["Person | None"] = relationship(
        primaryjoin="foreign(Registration.email_key) == Person.email_key", viewonly=True)

    @property
    def is_active(self) -> bool:
        return self.status != RegistrationStatus.CANCELLED


class Person(db.Model):
    """Everyone who signed up with one address: the key of their page of all their sessions."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The key registrations use (Registration.email_key): the address case-folded.
    email_key: Mapped[str] = mapped_column(sa.String(320), unique=True)
    # The link to the person's page is an HMAC of this nonce under the server's key; only its
    # digest is kept, and a new nonce revokes every link sent before.
    token_nonce: Mapped[str] = mapped_column(sa.String(64))
    token_digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    # A permanent delivery failure (a 5.x.x bounce) to this address: nothing more is sent to it
    # until an organiser clears the mark or the person signs up again.
    undeliverable_at: Mapped[datetime | None]
    undeliverable_reason: Mapped[str | None] = mapped_column(sa.String(500))

    @property
    def is_undeliverable(self) -> bool:
        return self.undeliverable_at is not None

    def clear_undeliverable(self) -> None:
        """Lift the mark: email to the address goes out again."""
        if self.undeliverable_at is not None:
            self.undeliverable_at = self.undeliverable_reason = None
