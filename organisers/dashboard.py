"""The console's dashboard: every event with its registrations and messages counted by status,
and the people (distinct addresses) behind the registrations, per event and for the forum."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from extensions import db
from notifications import reminders
from notifications.models import Message
from registration.models import Event, Person, Registration, RegistrationStatus


@dataclass(frozen=True)
class Headcount:
    """Registrations that still stand (confirmed or waiting; cancelled ones apart, as in their
    own column) and the people behind them: distinct addresses, by their case-folded key."""

    registrations: int = 0
    people: int = 0
    # Of those people, how many have an address marked undeliverable (a permanent bounce).
    undeliverable: int = 0


@dataclass
class EventRow:
    """One event of the dashboard with its counts by status."""

    event: Event
    people: Counter = field(default_factory=Counter)
    messages: Counter = field(default_factory=Counter)
    headcount: Headcount = Headcount()


def _counts_by_event(model) -> dict[int, Counter]:
    counts: dict[int, Counter] = {}
    rows = db.session.execute(
        sa.select(model.event_id, model.status, sa.func.count())
        .group_by(model.event_id, model.status)
    )
    for event_id, status, count in rows:
        counts.setdefault(event_id, Counter())[status] = count
    return counts


# Both headcounts count the same rows. An anonymised registration's key is unique to it
# ("deleted:<id>"), so it counts as a person of its own: who it was is no longer known.
_STANDING = Registration.status != RegistrationStatus.CANCELLED
_HEADCOUNT = (
    sa.func.count(),
    sa.func.count(sa.distinct(Registration.email_key)),
    sa.func.count(sa.distinct(sa.case((Person.undeliverable_at.is_not(None),
                                       Registration.email_key)))),
)


def _standing_with_people(*columns) -> sa.Select:
    return (sa.select(*columns, *_HEADCOUNT)
            .outerjoin(Person, Person.email_key == Registration.email_key)
            .where(_STANDING))


def _headcounts_by_event() -> dict[int, Headcount]:
    rows = db.session.execute(
        _standing_with_people(Registration.event_id).group_by(Registration.event_id))
    return {event_id: Headcount(*counts) for event_id, *counts in rows}


def forum_headcount() -> Headcount:
    """The forum's registrations that stand and the people behind them, each person once
    however many sessions they signed up for (and how many of them can't be emailed)."""
    return Headcount(*db.session.execute(_standing_with_people()).one())


def dashboard_rows(now: datetime) -> tuple[list[EventRow], list[EventRow]]:
    """Every event with its registrations and messages counted by status (reminders still to
    be written as pending), in five queries:
    (upcoming and running, soonest first; past, latest first)."""
    events = db.session.scalars(sa.select(Event).order_by(Event.starts_at, Event.id)).all()
    people = _counts_by_event(Registration)
    messages = _counts_by_event(Message)
    # Reminders are written when due: those still to come count as pending already.
    for event_id, planned in reminders.planned_counts(events, now).items():
        messages.setdefault(event_id, Counter())["pending"] += sum(c for _, c in planned)
    headcounts = _headcounts_by_event()
    rows = [EventRow(event, people.get(event.id, Counter()), messages.get(event.id, Counter()),
                     headcounts.get(event.id, Headcount()))
            for event in events]
    upcoming = [row for row in rows if not row.event.has_ended(now)]
    past = [row for row in reversed(rows) if row.event.has_ended(now)]
    return upcoming, past
