"""What the console shows of one event: its registrations by status, the timeline of its
messages, and those that failed or were skipped."""

from dataclasses import dataclass
from datetime import datetime, tzinfo

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload

from extensions import db
from notifications import reminders
from notifications.models import Announcement, Message, MessageKind, MessageStatus
from registration.models import Event, Registration, RegistrationStatus, Rsvp

# Messages sent to one person at a time, grouped by day in the timeline; the others go out in
# batches (a reminder, an update, a follow-up), grouped by the moment they were due.
PERSONAL_KINDS = (MessageKind.CONFIRMATION, MessageKind.WAITLISTED, MessageKind.PROMOTION,
                  MessageKind.CANCELLATION, MessageKind.MY_LINK)
# A registration's status, as the console's lists say it.
STATUS_LABELS = {
    RegistrationStatus.CONFIRMED: _l("confirmed"),
    RegistrationStatus.WAITLISTED: _l("waiting"),
    RegistrationStatus.CANCELLED: _l("cancelled"),
}

# The answer an attendee's calendar sent (registration.replies).
RSVP_LABELS = {
    Rsvp.ACCEPTED: _l("accepted"),
    Rsvp.TENTATIVE: _l("tentative"),
    Rsvp.DECLINED: _l("declined"),
}

KIND_LABELS = {
    MessageKind.CONFIRMATION: _l("confirmation"),
    MessageKind.WAITLISTED: _l("waiting-list notice"),
    MessageKind.PROMOTION: _l("seat from the waiting list"),
    MessageKind.CANCELLATION: _l("cancellation"),
    MessageKind.REMINDER: _l("reminder"),
    MessageKind.UPDATE: _l("update"),
    MessageKind.FOLLOW_UP: _l("follow-up with the recording"),
    # Asked for by the person (it lists all their sessions); shown with the session it was
    # sent with.
    MessageKind.MY_LINK: _l("link to all their sessions, asked for"),
    MessageKind.ANNOUNCEMENT: _l("message from the organisers"),
}
FAILED_SHOWN = 200


@dataclass
class TimelineEntry:
    """Messages of one kind sent (or to be sent) together, or on one day."""

    status: str  # "sent" or "scheduled"
    kind: str
    first_at: datetime
    last_at: datetime
    count: int = 0


def timeline(event: Event, local_zone: tzinfo, now: datetime) -> list[TimelineEntry]:
    """The event's sent and pending messages, grouped; personal ones by day in `local_zone`.
    Reminders not yet written (they are, when due) count as pending ones."""
    rows = db.session.execute(
        sa.select(Message.status, Message.kind, Message.due_at, sa.func.count(),
                  sa.func.min(Message.sent_at), sa.func.max(Message.sent_at))
        .where(Message.event_id == event.id,
               Message.status.in_((MessageStatus.SENT, MessageStatus.PENDING)),
               # Each announcement has a line of its own, with its subject (announcements()).
               Message.kind != MessageKind.ANNOUNCEMENT)
        .group_by(Message.status, Message.kind, Message.due_at)
    )
    entries: dict[tuple, TimelineEntry] = {}
    for status, kind, due_at, count, first_sent, last_sent in rows:
        first, last = due_at, due_at
        if status == MessageStatus.SENT:
            first, last = first_sent or due_at, last_sent or due_at
        when = due_at.astimezone(local_zone).date() if kind in PERSONAL_KINDS else due_at
        key = (status, kind, when)
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = TimelineEntry(
                "sent" if status == MessageStatus.SENT else "scheduled", kind, first, last)
        entry.first_at, entry.last_at = min(entry.first_at, first), max(entry.last_at, last)
        entry.count += count
    for slot, count in reminders.planned_reminders(event, now):
        key = (MessageStatus.PENDING, MessageKind.REMINDER, slot.due_at)
        entry = entries.setdefault(key, TimelineEntry("scheduled", MessageKind.REMINDER,
                                                      slot.due_at, slot.due_at))
        entry.count += count
    return sorted(entries.values(), key=lambda e: (e.first_at, e.status != "sent", e.kind))


@dataclass
class AnnouncementLine:
    """One announcement as the timeline shows it: its subject, when and its rows' outcomes."""

    announcement: Announcement
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        """Every row written for it, whatever became of each."""
        return self.queued + self.sent + self.failed + self.skipped


_COUNTED = {MessageStatus.PENDING: "queued", MessageStatus.SENT: "sent",
            MessageStatus.FAILED: "failed", MessageStatus.SKIPPED: "skipped"}


def announcements(event: Event) -> list[AnnouncementLine]:
    """The event's announcements, earliest due first, each with how many of its emails are
    queued, sent, failed and skipped."""
    lines = {
        announcement.id: AnnouncementLine(announcement)
        for announcement in db.session.scalars(
            sa.select(Announcement).where(Announcement.event_id == event.id)
            .order_by(Announcement.due_at, Announcement.id))
    }
    if not lines:
        return []
    which = Message.detail["announcement_id"].as_integer()
    rows = db.session.execute(
        sa.select(which, Message.status, sa.func.count())
        .where(Message.event_id == event.id, Message.kind == MessageKind.ANNOUNCEMENT)
        .group_by(which, Message.status)
    )
    for announcement_id, status, count in rows:
        line = lines.get(announcement_id)
        if line is not None:
            setattr(line, _COUNTED[status], getattr(line, _COUNTED[status]) + count)
    return list(lines.values())


def _failed(event: Event) -> list[Message]:
    return db.session.scalars(
        sa.select(Message)
        .where(Message.event_id == event.id, Message.status == MessageStatus.FAILED)
        .order_by(Message.last_attempt_at, Message.id)
        .limit(FAILED_SHOWN + 1)
    ).all()


def _skipped(event: Event) -> list[tuple[str, int]]:
    rows = db.session.execute(
        sa.select(Message.skip_reason, sa.func.count())
        .where(Message.event_id == event.id, Message.status == MessageStatus.SKIPPED)
        .group_by(Message.skip_reason)
        .order_by(sa.func.count().desc(), Message.skip_reason)
    )
    return [(reason or _("no reason recorded"), count) for reason, count in rows]


def event_overview(event: Event, now: datetime, local_zone: tzinfo) -> dict:
    """Everything the event's console page shows besides the form, as template variables."""
    registrations = db.session.scalars(
        sa.select(Registration)
        .where(Registration.event_id == event.id)
        # The person: whether their address is marked undeliverable.
        .options(selectinload(Registration.person))
        .order_by(Registration.registered_at, Registration.id)
    ).all()
    by_status = {state: [r for r in registrations if r.status == state]
                 for state in RegistrationStatus}
    attendees = by_status[RegistrationStatus.CONFIRMED]
    waiting = by_status[RegistrationStatus.WAITLISTED]
    failed = _failed(event)
    return {
        "attendees": attendees,
        "waiting": waiting,
        "cancelled": by_status[RegistrationStatus.CANCELLED],
        "active_count": len(attendees) + len(waiting),
        "timeline": timeline(event, local_zone, now),
        "announcements": announcements(event),
        "failed": failed[:FAILED_SHOWN],
        "more_failed": len(failed) > FAILED_SHOWN,
        "retryable": sum(1 for m in failed if m.expires_at > now),
        "skipped": _skipped(event),
    }
