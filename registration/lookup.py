"""What an address names, for the public pages and the console alike: the event, or a 404; and
the sessions a person may choose to sign up for."""

from datetime import datetime

import sqlalchemy as sa
from flask import abort

from extensions import db
from registration import services
from registration.models import Event, EventStatus


def event_or_404(slug: str, *, lock: bool = False) -> Event:
    """The event with this slug, else a 404 naming the slug; with `lock`, read afresh under
    the event's lock (a sign-up may have taken a seat since the session loaded it)."""
    event = services.find_event(slug)
    if event is None:
        abort(404, description=f"No event has the slug {slug[:80]!r}. See the programme for "
                               "the sessions there are.")
    return services.lock_event(event) if lock else event


def open_events(now: datetime) -> list[Event]:
    """The sessions that take sign-ups at `now`, soonest first."""
    return db.session.scalars(
        sa.select(Event)
        .where(Event.status != EventStatus.CANCELLED, Event.ends_at > now)
        .order_by(Event.starts_at, Event.id)
    ).all()
