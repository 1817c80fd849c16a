"""Personal data's end: anonymising a registration, at the attendee's request or when the
retention period after its event has passed. Counts and statistics stay."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from extensions import db
from notifications import planner
from registration import people, services, tokens
from registration.models import Event, Person, Registration


def anonymise(registrations: list[Registration], now: datetime) -> int:
    """Wipe name, email, organisation and the manage link of these registrations; keep the
    affiliation, country, zone, language, status and times for statistics. A person none of
    whose registrations keeps their data any more is deleted too: their link stops working."""
    email_keys = sorted({registration.email_key for registration in registrations})
    for registration in registrations:
        registration.name = ""
        registration.email = ""
        # Unique per registration, so the "one active registration per address" index holds.
        registration.email_key = f"deleted:{registration.id}"
        registration.organisation = ""
        # A digest no link ever sent matches: the old manage link stops working.
        registration.token_nonce = secrets.token_urlsafe(24)
        registration.token_digest = tokens.digest(secrets.token_urlsafe(32))
        registration.anonymised_at = now
    db.session.flush()
    planner.forget_recipients([r.id for r in registrations], now)
    people.forget_unused(email_keys)
    return len(registrations)


def delete_my_data(registration: Registration, now: datetime) -> None:
    """The attendee's own request: cancel (the seat goes to the waiting list and the
    cancellation still reaches them), then anonymise at once. After the session's end only
    anonymise: the registration stays in its history as it was, seat and status included."""
    if registration.is_active and registration.event.is_open_for_cancellation(now):
        services.cancel(registration, now)
    anonymise([registration], now)


def delete_all_my_data(person: Person, now: datetime) -> int:
    """The same for every registration of the person that still holds their data, then the
    person: their link to all their sessions stops working. Returns how many registrations."""
    registrations = people.registrations_with_data(person)
    for registration in registrations:
        delete_my_data(registration, now)
    people.forget_unused([person.email_key])
    db.session.flush()
    return len(registrations)


@dataclass
class PurgeReport:
    """What a purge did, or would do."""

    registrations: int
    events: list[str]

    def __str__(self) -> str:
        if not self.registrations:
            return "Nothing to purge."
        return (f"{self.registrations} registrations anonymised, from {len(self.events)} "
                f"event(s) that ended before the retention period: {', '.join(self.events)}")


def due_for_purge(now: datetime, retention_days: int) -> sa.Select:
    """Registrations still holding personal data whose event ended over the period ago."""
    cutoff = now - timedelta(days=retention_days)
    return (
        sa.select(Registration)
        .join(Event, Registration.event_id == Event.id)
        .where(Event.ends_at < cutoff, Registration.anonymised_at.is_(None))
        .order_by(Registration.id)
    )


def purge(now: datetime, retention_days: int, dry_run: bool = False,
          batch_size: int = 500) -> PurgeReport:
    """Anonymise every registration past the retention period (in batches; flushes only)."""
    query = due_for_purge(now, retention_days)
    slugs = db.session.scalars(
        sa.select(Event.slug).distinct()
        .join(Registration, Registration.event_id == Event.id)
        .where(Registration.id.in_(query.with_only_columns(Registration.id)))
        .order_by(Event.slug)
    ).all()
    if dry_run:
        count = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        return PurgeReport(count, list(slugs))
    total = 0
    while batch := db.session.scalars(query.limit(batch_size)).all():
        total += anonymise(batch, now)
    return PurgeReport(total, list(slugs))
