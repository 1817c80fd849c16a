"""Sign-up, cancellation and the waiting list. Services flush; the caller commits once."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from extensions import db
from notifications import planner
from registration import tokens
from registration.models import Event, Registration


class SignupClosed(Exception):
    """The event has ended or was cancelled."""


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


def find_active(event: Event, email_key: str) -> Registration | None:
    """The person's active registration for this event, if any."""
    return db.session.scalar(
        sa.select(Registration).where(
            Registration.event_id == event.id,
            Registration.email_key == email_key,
            Registration.status != "cancelled",
        )
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
    if not event.is_open_for_signup(now):
        raise SignupClosed(event.slug)
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
    planner.queue_signup(registration, now)
    db.session.refresh(event, ["confirmed_count"])
    return registration


def _insert(event: Event, applicant: Applicant, now: datetime) -> Registration:
    seated = _take_seat(event)
    registration = Registration(
        event=event,
        status="confirmed" if seated else "waitlisted",
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
    """The registration a manage link belongs to, if the link is current."""
    if not token or len(token) > 100:
        return None
    return db.session.scalar(
        sa.select(Registration).where(Registration.token_digest == tokens.digest(token))
    )


def cancel(registration: Registration, now: datetime) -> bool:
    """Cancel a registration, free its seat and promote the next person; False if already done."""
    was_confirmed = registration.status == "confirmed"
    result = db.session.execute(
        sa.update(Registration)
        .where(Registration.id == registration.id, Registration.status == registration.status,
               Registration.status != "cancelled")
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db.session.refresh(registration)
    planner.queue_cancellation(registration, was_confirmed, now)
    if was_confirmed:
        _free_seat(registration.event)
        promote_waiting(registration.event, now)
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
            .where(Registration.event_id == event.id, Registration.status == "waitlisted")
            .order_by(Registration.registered_at, Registration.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        candidate = db.session.scalar(query)
        if candidate is None or not _take_seat(event):
            break
        result = db.session.execute(
            sa.update(Registration)
            .where(Registration.id == candidate.id, Registration.status == "waitlisted")
            .values(status="confirmed", confirmed_at=now)
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
