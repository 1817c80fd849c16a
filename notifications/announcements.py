"""Announcements: who a session's message from the organisers reaches, and its outbox rows,
one per recipient, written in the caller's transaction."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from extensions import db
from notifications import planner
from notifications.models import BOUNCED, Announcement, Audience, MessageStatus
from registration.models import Event, Language, Registration, RegistrationStatus

# An announcement may be due until this long after the session ends ("thank you, here are the
# slides"), and never once the registrants' data is due to be deleted.
AFTER_END = timedelta(days=7)
# A due announcement may still go out for this long (a relay's outage), then it is skipped:
# news a week late is worse than none.
SEND_WINDOW = timedelta(days=7)

AUDIENCE_STATUSES = {
    Audience.SEATS: (RegistrationStatus.CONFIRMED,),
    Audience.WAITING: (RegistrationStatus.WAITLISTED,),
    Audience.BOTH: (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED),
}


class NobodyToTell(ValueError):
    """No registration in the audience can get the announcement: nothing was stored."""


class AlreadyQueued(ValueError):
    """This draft was queued before (a second click on "Send"): nothing more was stored."""

    def __init__(self, announcement: Announcement):
        super().__init__(f"draft already queued as announcement {announcement.id}")
        self.announcement = announcement


@dataclass(frozen=True)
class Draft:
    """What the organisers composed, checked by the console: the words, who and when."""

    audience: Audience
    subject_en: str
    text_en: str
    subject_ja: str = ""
    text_ja: str = ""
    due_at: datetime | None = None  # None: at once
    # Which preview this is (see Announcement.draft_key).
    key: str = ""

    def announcement(self, event: Event, now: datetime) -> Announcement:
        """The announcement these values make (not added to the session)."""
        return Announcement(event=event, audience=self.audience, subject_en=self.subject_en,
                            text_en=self.text_en, subject_ja=self.subject_ja or None,
                            text_ja=self.text_ja or None, created_at=now,
                            due_at=self.due_at or now, draft_key=self.key)


@dataclass
class Reach:
    """Who an announcement reaches: those it goes to, and those skipped for their address."""

    recipients: list[Registration] = field(default_factory=list)
    undeliverable: list[Registration] = field(default_factory=list)

    def by_language(self, announcement: Announcement) -> dict[str, list[Registration]]:
        """The recipients by the language they will read it in (English first)."""
        groups: dict[str, list[Registration]] = {Language.EN: [], Language.JA: []}
        for registration in self.recipients:
            groups[announcement.language_for(registration.language)].append(registration)
        return groups


def latest_due(event: Event) -> datetime:
    """The latest moment an announcement for this session may be due."""
    retention = timedelta(days=current_app.config["RETENTION_DAYS"])
    return event.ends_at + min(AFTER_END, retention)


def expires_at(event: Event, due_at: datetime) -> datetime:
    """Until when an announcement due then may go out: the send window, but never past the
    day the registrants' data is deleted."""
    retention = timedelta(days=current_app.config["RETENTION_DAYS"])
    return min(due_at + SEND_WINDOW, event.ends_at + retention)


def reach(event: Event, audience: Audience) -> Reach:
    """The registrations an announcement to this audience goes to, seats first, then by when
    they signed up; cancelled and anonymised ones are not among them."""
    registrations = db.session.scalars(
        sa.select(Registration)
        .where(Registration.event_id == event.id,
               Registration.status.in_(AUDIENCE_STATUSES[audience]),
               Registration.anonymised_at.is_(None))
        .options(selectinload(Registration.person))
        .order_by(Registration.status, Registration.registered_at, Registration.id)
    ).all()
    result = Reach()
    for registration in registrations:
        person = registration.person
        undeliverable = person is not None and person.is_undeliverable
        (result.undeliverable if undeliverable else result.recipients).append(registration)
    return result


def _queued(key: str) -> Announcement | None:
    return db.session.scalar(sa.select(Announcement).where(Announcement.draft_key == key))


def queue(event: Event, draft: Draft, now: datetime) -> tuple[Announcement, Reach]:
    """Store the announcement and one outbox row per registration it reaches, due at once or
    at the chosen time; an undeliverable address gets its row already skipped as bounced,
    so the timeline counts it. A draft queued before raises AlreadyQueued. Flushed, never
    committed."""
    due_at = draft.due_at or now
    if not now <= due_at < latest_due(event) or event.is_cancelled:
        raise ValueError("an announcement must be due from now until shortly after the end "
                         "of a session that is not cancelled")
    found = reach(event, draft.audience)
    if not found.recipients:
        raise NobodyToTell(f"nobody in the audience {draft.audience} of event {event.id}")
    if not draft.key:
        raise ValueError("a draft to queue needs its key")
    if queued := _queued(draft.key):
        raise AlreadyQueued(queued)
    announcement = draft.announcement(event, now)
    try:
        with db.session.begin_nested():
            db.session.add(announcement)  # flushed as the savepoint ends: its id, for the rows
    except IntegrityError:
        # The same draft sent twice at once, and the other request won.
        if queued := _queued(draft.key):
            raise AlreadyQueued(queued) from None
        raise
    until = expires_at(event, due_at)
    for registration in found.recipients:
        planner.queue_announcement(registration, announcement.id, now, due_at=due_at,
                                   expires_at=until)
    for registration in found.undeliverable:
        message = planner.queue_announcement(registration, announcement.id, now, due_at=due_at,
                                             expires_at=until)
        message.status, message.skip_reason = MessageStatus.SKIPPED, BOUNCED
    db.session.flush()
    return announcement, found
