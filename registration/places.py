"""Where a registration stands: a seat, or a place in the waiting list's queue."""

import sqlalchemy as sa

from extensions import db
from registration.models import Registration, RegistrationStatus

# The waiting list's order, first come first served: who is promoted next is number 1.
QUEUE_ORDER = (Registration.registered_at, Registration.id)


def waiting_position(registration: Registration) -> int | None:
    """The person's place on the waiting list (1 is promoted next); None if not on it."""
    if registration.status != RegistrationStatus.WAITLISTED:
        return None
    ahead = sa.tuple_(*QUEUE_ORDER) < sa.tuple_(registration.registered_at, registration.id)
    return 1 + db.session.scalar(
        sa.select(sa.func.count(Registration.id))
        .where(Registration.event_id == registration.event_id,
               Registration.status == RegistrationStatus.WAITLISTED, ahead)
    )


def holds_seat(registration: Registration) -> bool:
    """A confirmed place at a session that still takes place: what the own invite needs."""
    return (registration.status == RegistrationStatus.CONFIRMED
            and not registration.event.is_cancelled)
