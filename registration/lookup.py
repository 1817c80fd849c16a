"""What an address names, for the public pages and the console alike: the event, or a 404."""

from flask import abort

from registration import services
from registration.models import Event


def event_or_404(slug: str, *, lock: bool = False) -> Event:
    """The event with this slug, else a 404 naming the slug; with `lock`, read afresh under
    the event's lock (a sign-up may have taken a seat since the session loaded it)."""
    event = services.find_event(slug)
    if event is None:
        abort(404, description=f"No event has the slug {slug[:80]!r}. See the programme for "
                               "the sessions there are.")
    return services.lock_event(event) if lock else event
