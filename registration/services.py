"""Sign-up, cancellation and the waiting list. Services flush; the caller commits once.
(Changes to an event, which plan what its registrants hear, are in registration.changes.)"""

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from extensions import db
from notifications import planner
from registration import people, places, tokens
from registration.models import Event, Registration, RegistrationStatus


class SignupClosed(Exception):
    """The event has ended or was cancelled."""


class CancellationClosed(Exception):
    """The event has ended: its registrations can no longer be cancelled."""


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
    """The event with this slug, if any (a slug no event can have is not looked up: PostgreSQL
    refuses a NUL, and a lone surrogate can't even be sent to it)."""
    if not slug or len(slug) > Event.slug.type.length or not slug.isprintable():
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


def add_by_hand(event: Event, applicant: Applicant, now: datetime, *,
                organiser_id: int) -> tuple[Registration, bool]:
    """An organiser signs someone up in the console, by the form's rules, the registration
    marked as theirs; whether it is new (False: the address held a place already, and its
    confirmation is sent again as on a repeat sign-up)."""
    return _sign_up([event], applicant, now, added_by=organiser_id)[0]


def sign_up_many(events: list[Event], applicant: Applicant,
                 now: datetime) -> list[Registration]:
    """Register the applicant for each event (a seat if one is free, else the waiting list),
    or re-send the confirmation of a registration they hold already, for that event only.

    The events are locked in id order, so two submissions sharing sessions never deadlock;
    if any has ended or was cancelled, SignupClosed names every such slug before anything
    is stored. Returns the registrations in the order of `events` (duplicates once).
    """
    return [registration for registration, _ in _sign_up(events, applicant, now)]


def _sign_up(events: list[Event], applicant: Applicant, now: datetime, *,
             added_by: int | None = None) -> list[tuple[Registration, bool]]:
    events = list({event.id: event for event in events}.values())
    locked = {event.id: lock_event(event) for event in sorted(events, key=lambda e: e.id)}
    closed = [event.slug for event in locked.values() if not event.is_open_for_signup(now)]
    if closed:
        raise SignupClosed(*closed)
    # The person behind the address, for the link to all their sessions in every email; an
    # address marked undeliverable is theirs to vouch for again by signing up with it.
    people.ensure(applicant.email_key, now).clear_undeliverable()
    return [_register(locked[event.id], applicant, now, added_by) for event in events]


def _register(event: Event, applicant: Applicant, now: datetime,
              added_by: int | None) -> tuple[Registration, bool]:
    """sign_up for one event already locked and open; whether the registration is new."""
    existing = find_active(event, applicant.email_key)
    if existing is not None:
        planner.queue_signup(existing, now)
        return existing, False
    try:
        with db.session.begin_nested():
            registration = _insert(event, applicant, now, added_by)
    except IntegrityError:
        # Someone with the same address won the race a moment ago: that is a repeat.
        existing = find_active(event, applicant.email_key)
        if existing is None:
            raise
        planner.queue_signup(existing, now)
        return existing, False
    planner.plan_new_registration(registration, now)
    return registration, True


def _insert(event: Event, applicant: Applicant, now: datetime,
            added_by: int | None) -> Registration:
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
        added_by_organiser_id=added_by,
    )
    tokens.issue_token(registration)
    db.session.add(registration)
    db.session.flush()
    return registration


def find_by_token(token: str) -> Registration | None:
    """The registration a manage link belongs to, if the link is current (links sent before
    they carried the id are found by their digest)."""
    return tokens.holder(Registration, token, by_digest=True)


def cancel(registration: Registration, now: datetime, *, by: str = "attendee",
           reason: str | None = None) -> bool:
    """Cancel a registration, free its seat and promote the next person; False if already done.
    `by`: the attendee on a page, their calendar declining the invite, or an organiser in the
    console, whose `reason` the email quotes (the email says which).

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
    planner.queue_cancellation(registration, was_confirmed, now, by=by, reason=reason)
    if was_confirmed:
        _free_seat(event)
        promote_waiting(event, now)
    db.session.flush()
    return True


def _seat_waiting(registration: Registration, now: datetime) -> bool:
    """Turn a waiting registration into a seat holder (its seat already taken); False if it was
    no longer waiting."""
    return db.session.execute(
        sa.update(Registration)
        .where(Registration.id == registration.id,
               Registration.status == RegistrationStatus.WAITLISTED)
        .values(status=RegistrationStatus.CONFIRMED, confirmed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


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
        if not _seat_waiting(candidate, now):
            _free_seat(event)
            continue
        db.session.refresh(candidate)
        planner.queue_promotion(candidate, now)
        promoted.append(candidate)
    db.session.refresh(event, ["confirmed_count"])
    return promoted


# --- the console's actions on one registration ------------------------------------------------


class ActionRefused(Exception):
    """An organiser's action on a registration that can't go ahead now; nothing was changed."""


class NoSeatFree(ActionRefused):
    """Every seat is taken: moving someone up needs the organiser's over-capacity consent."""


def promote(registration: Registration, now: datetime, *,
            over_capacity: bool = False) -> Registration:
    """Give a waiting registration a seat ahead of the queue: a free one, or (`over_capacity`)
    one beyond the capacity; the invite and reminders follow as for any promotion. Raises
    NoSeatFree, or ActionRefused when it is not waiting or the session is over or cancelled."""
    event = lock_event(registration.event)
    if event.is_cancelled or event.has_ended(now):
        raise ActionRefused(event.slug)
    db.session.refresh(registration)
    if registration.status != RegistrationStatus.WAITLISTED or registration.anonymised_at:
        raise ActionRefused(registration.id)
    # A savepoint: a refusal leaves the seat count as it was, and the caller's transaction
    # usable (to show the page again).
    with db.session.begin_nested():
        if not _take_seat(event):
            if not over_capacity:
                raise NoSeatFree(event.slug)
            # The organiser said so: one seat past the capacity (no CHECK ties the two).
            db.session.execute(
                sa.update(Event).where(Event.id == event.id)
                .values(confirmed_count=Event.confirmed_count + 1)
                .execution_options(synchronize_session=False))
        if not _seat_waiting(registration, now):
            raise ActionRefused(registration.id)
    db.session.refresh(registration)
    db.session.refresh(event, ["confirmed_count"])
    planner.queue_promotion(registration, now)
    db.session.flush()
    return registration


def resend_confirmation(registration: Registration, now: datetime):
    """Queue the registration's confirmation (a seat's, with its invite) or waiting-list notice
    again, past the repeat sign-up's daily allowance; ActionRefused for a cancelled
    registration, or once the session is over or cancelled."""
    event = lock_event(registration.event)
    db.session.refresh(registration)
    if (not registration.is_active or registration.anonymised_at is not None
            or event.is_cancelled or event.has_ended(now)):
        raise ActionRefused(registration.id)
    message = planner.queue_signup(registration, now, is_repeat=False)
    db.session.flush()
    return message
