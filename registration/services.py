"""Sign-up, cancellation and the waiting list. Services flush; the caller commits once."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from extensions import db
from notifications import planner
from registration import people, places, tokens
from registration.models import Event, EventStatus, Registration, RegistrationStatus


class SignupClosed(Exception):
    """The event has ended or was cancelled."""


class CancellationClosed(Exception):
    """The event has ended: its registrations can no longer be cancelled."""


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


@dataclass
class Applicant:
    """What the sign-up form collects, already validated and normalised."""

    name: str
    email: str
    email_key: str
    organisation: str
    affiliation: str
    country: str
    timezone: str
    language: str
    consent_version: str


def find_event(slug: str) -> Event | None:
    """The event with this slug, if any (a slug no event can have is not looked up)."""
    if not slug or len(slug) > 80:
        return None
    return db.session.scalar(sa.select(Event).where(Event.slug == slug))


def find_active(event: Event, email_key: str) -> Registration | None:
    """The person's active registration for this event, if any."""
    return db.session.scalar(
        sa.select(Registration).where(
            Registration.event_id == event.id,
            Registration.email_key == email_key,
            Registration.status != RegistrationStatus.CANCELLED,
        )
    )


def lock_event(event: Event) -> Event:
    """Re-read the event under a row lock, so that sign-ups, cancellations and changes to one
    event happen one after another, each seeing what the last one committed: a seat freed
    while someone joins the waiting list still goes to them, nobody signs up to a session
    cancelled a moment ago, and a repeat's re-send allowance is counted right. (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already runs every writer one after another.)"""
    return db.session.scalar(
        sa.select(Event)
        .where(Event.id == event.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _take_seat(event: Event) -> bool:
    """Take one seat if one is free: a single conditional UPDATE, atomic on both databases."""
    result = db.session.execute(
        sa.update(Event)
        .where(
            Event.id == event.id,
            sa.or_(Event.capacity.is_(None), Event.confirmed_count < Event.capacity),
        )
        .values(confirmed_count=Event.confirmed_count + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _free_seat(event: Event) -> None:
    db.session.execute(
        sa.update(Event)
        .where(Event.id == event.id, Event.confirmed_count > 0)
        .values(confirmed_count=Event.confirmed_count - 1)
        .execution_options(synchronize_session=False)
    )


def sign_up(event: Event, applicant: Applicant, now: datetime) -> Registration:
    """Register the applicant, or re-send the confirmation of an existing registration.

    A repeat answers exactly like a first sign-up, so the caller can't tell them apart.
    """
    return sign_up_many([event], applicant, now)[0]


def sign_up_many(events: list[Event], applicant: Applicant,
                 now: datetime) -> list[Registration]:
    """Register the applicant for each event (a seat if one is free, else the waiting list),
    or re-send the confirmation of a registration they hold already, for that event only.

    The events are locked in id order, so two submissions sharing sessions never deadlock;
    if any has ended or was cancelled, SignupClosed names every such slug before anything
    is stored. Returns the registrations in the order of `events` (duplicates once).
    """
    events = list({event.id: event for event in events}.values())
    locked = {event.id: lock_event(event) for event in sorted(events, key=lambda e: e.id)}
    closed = [event.slug for event in locked.values() if not event.is_open_for_signup(now)]
    if closed:
        raise SignupClosed(*closed)
    # The person behind the address, for the link to all their sessions in every email.
    people.ensure(applicant.email_key, now)
    return [_register(locked[event.id], applicant, now) for event in events]


def _register(event: Event, applicant: Applicant, now: datetime) -> Registration:
    """sign_up for one event already locked and open."""
    existing = find_active(event, applicant.email_key)
    if existing is not None:
        planner.queue_signup(existing, now)
        return existing
    try:
        with db.session.begin_nested():
            registration = _insert(event, applicant, now)
    except IntegrityError:
        # Someone with the same address won the race a moment ago: that is a repeat.
        existing = find_active(event, applicant.email_key)
        if existing is None:
            raise
        planner.queue_signup(existing, now)
        return existing
    planner.plan_new_registration(registration, now)
    return registration


def _insert(event: Event, applicant: Applicant, now: datetime) -> Registration:
    seated = _take_seat(event)
    registration = Registration(
        event=event,
        status=RegistrationStatus.CONFIRMED if seated else RegistrationStatus.WAITLISTED,
        name=applicant.name,
        email=applicant.email,
        email_key=applicant.email_key,
        organisation=applicant.organisation,
        affiliation=applicant.affiliation,
        country=applicant.country,
        timezone=applicant.timezone,
        language=applicant.language,
        registered_at=now,
        confirmed_at=now if seated else None,
        consent_at=now,
        consent_version=applicant.consent_version,
        ical_uid=f"{uuid.uuid4()}@forum-signup",
        ical_sequence=0,
    )
    tokens.issue_token(registration)
    db.session.add(registration)
    db.session.flush()
    return registration


def find_by_token(token: str) -> Registration | None:
    """The registration a manage link belongs to, if the link is current: made for its nonce
    with SECRET_KEY or a key still in SECRET_KEY_FALLBACKS."""
    if not token or len(token) > 100:
        return None
    try:
        registration_id, mac = tokens.split(token)
    except ValueError:
        return None
    if registration_id is None:
        registration = db.session.scalar(
            sa.select(Registration).where(Registration.token_digest == tokens.digest(mac)))
    else:
        registration = db.session.get(Registration, registration_id)
    if registration is None or not tokens.is_valid(registration, mac):
        return None
    return registration


def cancel(registration: Registration, now: datetime) -> bool:
    """Cancel a registration, free its seat and promote the next person; False if already done.

    On a session the organisers cancelled, the person already has (or will get) its
    cancellation: the registration just ends, with nothing more sent. After the session's end
    raises CancellationClosed, having changed nothing.
    """
    event = lock_event(registration.event)
    if not event.is_open_for_cancellation(now):
        raise CancellationClosed(event.slug)
    db.session.refresh(registration)
    was_confirmed = registration.status == RegistrationStatus.CONFIRMED
    result = db.session.execute(
        sa.update(Registration)
        .where(Registration.id == registration.id, Registration.status == registration.status,
               Registration.status != RegistrationStatus.CANCELLED)
        .values(status=RegistrationStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db.session.refresh(registration)
    if event.is_cancelled:
        return True
    planner.queue_cancellation(registration, was_confirmed, now)
    if was_confirmed:
        _free_seat(event)
        promote_waiting(event, now)
    db.session.flush()
    return True


def promote_waiting(event: Event, now: datetime) -> list[Registration]:
    """Give free seats to the waiting list, first come first served."""
    promoted = []
    if event.is_cancelled or event.has_ended(now):
        return promoted
    while True:
        query = (
            sa.select(Registration)
            .where(Registration.event_id == event.id,
                   Registration.status == RegistrationStatus.WAITLISTED)
            .order_by(*places.QUEUE_ORDER)
            .limit(1)
            # Not SKIP LOCKED: the head of the queue is never passed over because another
            # request happens to hold its row (the event's lock orders promotions already).
            .with_for_update()
        )
        candidate = db.session.scalar(query)
        if candidate is None or not _take_seat(event):
            break
        result = db.session.execute(
            sa.update(Registration)
            .where(Registration.id == candidate.id,
                   Registration.status == RegistrationStatus.WAITLISTED)
            .values(status=RegistrationStatus.CONFIRMED, confirmed_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            _free_seat(event)
            continue
        db.session.refresh(candidate)
        planner.queue_promotion(candidate, now)
        promoted.append(candidate)
    db.session.refresh(event, ["confirmed_count"])
    return promoted


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
        for registration in _active_registrations(event):
            planner.queue_cancellation(registration,
                                       registration.status == RegistrationStatus.CONFIRMED, now,
                                       by_organiser=True)
            result.notified += 1
        db.session.flush()
        return result
    if told:
        event.ical_sequence += 1
        if not event.has_ended(now):
            for registration in _active_registrations(event):
                if registration.status == RegistrationStatus.CONFIRMED or "time" in told:
                    planner.queue_update(registration, now, changed=told,
                                         old_starts_at=old_starts_at, old_ends_at=old_ends_at)
                    result.notified += 1
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
