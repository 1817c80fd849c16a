"""People across sessions: the row behind an address, its link to all their registrations,
the lost-link email, and deleting everything of theirs at once. Services flush; the caller
commits once."""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from extensions import db
from notifications import planner
from notifications.models import BOUNCED
from registration import tokens
from registration.models import Event, Person, Registration, RegistrationStatus

# The lost-link email, at most this often per address (asked for, or sent after a sign-out).
LINK_EMAILS_PER_HOUR = 3


def find(email_key: str, *, lock: bool = False) -> Person | None:
    """The person with this address key, if any (`lock`: until the transaction ends)."""
    query = sa.select(Person).where(Person.email_key == email_key)
    return db.session.scalar(query.with_for_update() if lock else query)


def ensure(email_key: str, now: datetime) -> Person:
    """The person with this address key, made (with a fresh link) if there is none yet; safe
    against a concurrent sign-up with the same address, which may make it first."""
    # Locked: a delete-all or purge removing the row waits for this sign-up to commit (and
    # sees its registration), or this waits for it and makes the row again.
    person = find(email_key, lock=True)
    if person is not None:
        return person
    try:
        with db.session.begin_nested():
            person = Person(email_key=email_key, created_at=now)
            tokens.issue_token(person)
            db.session.add(person)
            db.session.flush()
    except IntegrityError:
        # Another sign-up with this address made the row a moment ago: that row is theirs.
        person = find(email_key)
        if person is None:
            raise
    return person


def find_by_token(token: str) -> Person | None:
    """The person a link to all their sessions belongs to, if the link is current (these
    links always carried the id)."""
    return tokens.holder(Person, token)


def _theirs(person: Person):
    return sa.select(Registration).where(Registration.email_key == person.email_key,
                                         Registration.anonymised_at.is_(None))


def current_registrations(person: Person, now: datetime) -> list[Registration]:
    """The person's registrations that are not cancelled: upcoming first (soonest first), then
    the past ones (latest first)."""
    registrations = db.session.scalars(
        _theirs(person).join(Event, Registration.event_id == Event.id)
        .where(Registration.status != RegistrationStatus.CANCELLED)
        .order_by(Event.starts_at, Registration.id)
    ).all()
    upcoming = [r for r in registrations if not r.event.has_ended(now)]
    past = [r for r in registrations if r.event.has_ended(now)]
    return upcoming + past[::-1]


def one_of_theirs(person: Person, registration_id: int) -> Registration | None:
    """One of the person's registrations (cancelled ones too), by id; None for anyone
    else's, and once its data was deleted."""
    return db.session.scalar(_theirs(person).where(Registration.id == registration_id))


def latest_registration(person: Person) -> Registration | None:
    """The registration an email about the person goes with (its language, its name): the
    latest active one, else the latest with data."""
    return db.session.scalar(
        _theirs(person)
        .order_by((Registration.status == RegistrationStatus.CANCELLED).asc(),
                  Registration.registered_at.desc(), Registration.id.desc())
        .limit(1))


def send_link(person: Person, now: datetime, *, signed_out: bool = False) -> bool:
    """Queue the email with the link to all the person's sessions, unless LINK_EMAILS_PER_HOUR
    went out (or are waiting) for the address in the last hour; whether one was queued."""
    registration = latest_registration(person)
    if registration is None:
        return False
    # One request after another per person, so that parallel ones count each other.
    db.session.scalar(sa.select(Person.id).where(Person.id == person.id).with_for_update())
    # A sign-out always brings its new link: only the holder of the current link can ask.
    if not signed_out and (planner.my_link_count(person.email_key, now - timedelta(hours=1))
                           >= LINK_EMAILS_PER_HOUR):
        return False
    planner.queue_my_link(registration, now, signed_out=signed_out)
    return True


def request_link(email_key: str, now: datetime) -> None:
    """"Lost your link?": an email with it if the address is a person's; nothing otherwise
    (the caller answers the same either way)."""
    has_data = db.session.scalar(sa.select(sa.exists().where(
        Registration.email_key == email_key, Registration.anonymised_at.is_(None))))
    if has_data:
        # ensure: the row is made again should a deletion have raced a sign-up and won.
        send_link(ensure(email_key, now), now)


def sign_out_everywhere(person: Person, now: datetime) -> None:
    """A new link, which every link sent before stops working for, emailed to the person;
    the manage links of their registrations change too (the page of all their sessions shows
    the current ones, and a manage page links to it), so an old email opens nothing."""
    tokens.issue_token(person)
    for registration in registrations_with_data(person):
        tokens.issue_token(registration)
    db.session.flush()
    send_link(person, now, signed_out=True)


def registrations_with_data(person: Person) -> list[Registration]:
    """Every registration of the person that still holds personal data, cancelled ones too."""
    # By session, as sign-ups lock them, so a deletion and a sign-up never wait on each other.
    return db.session.scalars(_theirs(person).order_by(Registration.event_id,
                                                       Registration.id)).all()


def forget_unused(email_keys: list[str]) -> int:
    """Delete the people among these keys none of whose registrations keeps their data: their
    link stops working. Returns how many."""
    if not email_keys:
        return 0
    in_use = sa.exists().where(Registration.email_key == Person.email_key,
                               Registration.anonymised_at.is_(None))
    return db.session.execute(
        sa.delete(Person).where(Person.email_key.in_(email_keys), ~in_use)
        .execution_options(synchronize_session=False)
    ).rowcount


def mark_undeliverable(email_key: str, reason: str, now: datetime) -> int:
    """Mark an address as failing for good (a 5.x.x bounce) with the server's words: its unsent
    emails end skipped as "bounced", and none goes out until the mark is cleared. How many
    unsent emails were skipped."""
    person = ensure(email_key, now)
    if person.undeliverable_at is None:
        person.undeliverable_at = now
    person.undeliverable_reason = reason[:500]
    return planner.skip_pending_to(email_key, BOUNCED)
