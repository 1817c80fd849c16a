"""Changes to an event: the one path for a reschedule, an edit, a cancellation, more or fewer
seats or a recording link, from the console and the importer alike, with the rules that refuse
one and every email it causes. Services flush; the caller commits once."""

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa

from extensions import db
from notifications import planner, session_changes
from registration.models import Event, EventStatus, Registration, RegistrationStatus
from registration.services import promote_waiting


class Refusal(NamedTuple):
    """Why a change to an event is refused: the field it is about, and why in words."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


class ChangeRefused(Exception):
    """A change to an event that would break a promise to its registrants; says why in words."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


REOPEN_REFUSED = (
    "{slug} was cancelled, and a cancelled session can't be scheduled again; "
    "publish a new session instead (with a new slug)"
)


def reopen_refusal(slug: str, status: str, asked: str | None) -> str | None:
    """Why a session in `status` can't be given the status `asked`, or None: a cancelled
    session stays cancelled (its attendees were told, and their invites removed)."""
    if status == EventStatus.CANCELLED and asked == EventStatus.SCHEDULED:
        return REOPEN_REFUSED.format(slug=slug)
    return None

# Changes registrants must hear of, by the words their email uses for them.
NOTIFIED_FIELDS = {
    "starts_at": "time",
    "ends_at": "time",
    "title": "title",
    "description": "description",
    "join_url": "join link",
    "location": "location",
}


def seats_refusal(event: Event, capacity: int | None, *, keep_seats: bool = False) -> str | None:
    """Why this capacity is refused, or None: a capacity below the seats already taken needs
    the organiser's explicit yes (`keep_seats`), and even then nobody loses a seat; the session
    stays full until enough people cancel."""
    if keep_seats or capacity is None or capacity == event.capacity:
        return None
    taken = event.confirmed_count
    if capacity < taken:
        return (f"capacity {capacity} is below the {taken} seat{'' if taken == 1 else 's'} "
                "already taken")
    return None


def check_change(event: Event, changes: dict, now: datetime, *,
                 keep_seats: bool = False) -> Refusal | None:
    """Why these changes to a stored event are refused, in words for the organiser; or None."""
    changes = {name: value for name, value in changes.items() if getattr(event, name) != value}
    reopening = reopen_refusal(event.slug, event.status, changes.get("status"))
    if reopening:
        return Refusal("status", reopening)
    if {"starts_at", "ends_at"} & changes.keys():
        starts_at = changes.get("starts_at", event.starts_at)
        ends_at = changes.get("ends_at", event.ends_at)
        if starts_at <= now:
            return Refusal("starts_at",
                           f"{event.slug} can't be moved into the past (its new start has gone by)")
        if ends_at <= starts_at:
            return Refusal("ends_at", f"{event.slug} would end before it starts")
    if "capacity" in changes:
        problem = seats_refusal(event, changes["capacity"], keep_seats=keep_seats)
        if problem:
            return Refusal("capacity", problem)
    return None


@dataclass
class EventChange:
    """What changing an event did: the fields changed and who was told or moved up."""

    changed: list[str]
    notified: int = 0
    notified_waiting: int = 0  # of those notified, the people on the waiting list
    promoted: int = 0
    follow_ups: int = 0  # seat holders who will get the recording link because of this change
    old_starts_at: datetime | None = None  # set when the change moved the session
    old_ends_at: datetime | None = None


def _active_registrations(event: Event) -> list[Registration]:
    return db.session.scalars(
        sa.select(Registration)
        .where(Registration.event_id == event.id,
               Registration.status != RegistrationStatus.CANCELLED)
        .order_by(Registration.id)
    ).all()


def change_event(event: Event, changes: dict, now: datetime, *,
                 keep_seats: bool = False) -> EventChange:
    """Change a stored event and plan every email the change causes; flushes, never commits.

    The one path for a reschedule, an edit, a cancellation, more or fewer seats or a recording
    link, whether it starts in the importer or the console. Raises ChangeRefused, changing
    nothing; `keep_seats` accepts a capacity below the seats already taken.
    """
    refusal = check_change(event, changes, now, keep_seats=keep_seats)
    if refusal:
        raise ChangeRefused(refusal)
    changes = {name: value for name, value in changes.items() if getattr(event, name) != value}
    result = EventChange(changed=sorted(changes))
    if not changes:
        return result
    old_starts_at, old_ends_at = event.starts_at, event.ends_at
    if {"starts_at", "ends_at"} & changes.keys():
        result.old_starts_at, result.old_ends_at = old_starts_at, old_ends_at
    more_seats = "capacity" in changes and (
        event.capacity is not None
        and (changes["capacity"] is None or changes["capacity"] > event.capacity)
    )
    was_cancelled = event.is_cancelled
    for name, value in changes.items():
        setattr(event, name, value)
    event.updated_at = now
    told = sorted({NOTIFIED_FIELDS[name] for name in changes if name in NOTIFIED_FIELDS})

    if was_cancelled:
        # Nothing is ever sent again for a cancelled session; edits are for the record only.
        db.session.flush()
        return result
    if event.is_cancelled:
        event.ical_sequence += 1
        db.session.flush()
        result.notified, result.notified_waiting = session_changes.queue_cancellations(event, now)
        db.session.flush()
        return result
    if "starts_at" in changes:
        event.time_changed_at = now  # reminders due before now are not sent for the new time
    if told:
        event.ical_sequence += 1
        if not event.has_ended(now):
            db.session.flush()
            result.notified, result.notified_waiting = session_changes.queue_updates(
                event, now, changed=told, old_starts_at=old_starts_at, old_ends_at=old_ends_at)
    if result.old_starts_at is not None:
        planner.move_follow_ups(event.id, now, ends_at=event.ends_at)
    if "recording_url" in changes and not event.recording_url:
        planner.move_follow_ups(event.id, now, ends_at=None)
    db.session.flush()
    if more_seats:
        result.promoted = len(promote_waiting(event, now))
        if event.recording_url:  # each promotion plans its own follow-up
            result.follow_ups += result.promoted
    if "recording_url" in changes and event.recording_url:
        for registration in _active_registrations(event):
            if planner.plan_follow_up(registration, now) is not None:
                result.follow_ups += 1
    db.session.flush()
    return result
