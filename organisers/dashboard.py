"""The console's dashboard: every event with its registrations and messages counted by status."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from registration.models import Event, Registration


@dataclass
class EventRow:
    """One event of the dashboard with its counts by status."""

    event: Event
    people: Counter = field(default_factory=Counter)
    messages: Counter = field(default_factory=Counter)


def _counts_by_event(model) -> dict[int, Counter]:
    counts: dict[int, Counter] = {}
    rows = db.session.execute(
        sa.select(model.event_id, model.status, sa.func.count())
        .group_by(model.event_id, model.status)
    )
    for event_id, status, count in rows:
        counts.setdefault(event_id, Counter())[status] = count
    return counts


def dashboard_rows(now: datetime) -> tuple[list[EventRow], list[EventRow]]:
    """Every event with its registrations and messages counted by status, in three queries:
    (upcoming and running, soonest first; past, latest first)."""
    events = db.session.scalars(sa.select(Event).order_by(Event.starts_at, Event.id)).all()
    people = _counts_by_event(Registration)
    messages = _counts_by_event(Message)
    rows = [EventRow(event, people.get(event.id, Counter()), messages.get(event.id, Counter()))
            for event in events]
    upcoming = [row for row in rows if not row.event.has_ended(now)]
    past = [row for row in reversed(rows) if row.event.has_ended(now)]
    return upcoming, past
