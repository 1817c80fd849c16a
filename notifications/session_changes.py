"""What a change to a whole session sends its registrants, queued set-based: a handful of
statements whatever the number of registrants, in the change's transaction."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from extensions import db
from notifications.models import IcalMethod, Message, MessageKind, MessageStatus
from notifications.outbox_sql import insert, message_ids, typed
from notifications.planner import skip_pending_where
from registration.models import Event, Registration, RegistrationStatus

# The first email of a seat: sent instead of an update when it has not gone out yet.
WELCOME_KINDS = (MessageKind.CONFIRMATION, MessageKind.PROMOTION)
# What a new version of the invite replaces when it has not gone out yet.
SUPERSEDED_KINDS = (*WELCOME_KINDS, MessageKind.UPDATE, MessageKind.REMINDER)
COLUMNS = ["registration_id", "event_id", "kind", "status", "message_id", "recipient",
           "ical_method", "ical_sequence", "created_at", "due_at", "expires_at", "detail"]


def _rows(event: Event, now: datetime, kind, method: IcalMethod | None, detail: dict | None,
          *where) -> int:
    """One row per registration of `event` matching `where`, due now; how many."""
    rows = sa.select(
        Registration.id,
        Registration.event_id,
        kind if isinstance(kind, sa.ColumnElement) else sa.literal(kind.value),
        sa.literal(MessageStatus.PENDING.value),
        message_ids(Registration.id),
        Registration.email,
        typed(method.value if method else None, Message.ical_method),
        Registration.ical_sequence,
        typed(now, Message.created_at),
        typed(now, Message.due_at),
        typed(event.ends_at, Message.expires_at),
        typed(detail, Message.detail),
    ).where(Registration.event_id == event.id, *where)
    return db.session.execute(insert().from_select(COLUMNS, rows)).rowcount


def queue_updates(event: Event, now: datetime, *, changed: list[str],
                  old_starts_at: datetime, old_ends_at: datetime) -> tuple[int, int]:
    """The session changed: each seat holder gets the invite again (same UID, higher
    SEQUENCE); a waiting-list person a plain notice when the time changed. Returns (how many
    were told, of whom on the waiting list).

    Someone whose confirmation (or promotion) has not gone out yet gets that email, with the
    new details, rather than news of a change to something they never heard of; whatever of
    the older version is still unsent is skipped as superseded. Reminders still to come are
    written when due, with the new time and version (notifications.reminders).
    """
    detail = {
        "changed": changed,
        "old_starts_at": old_starts_at.isoformat(),
        "old_ends_at": old_ends_at.isoformat(),
    }
    seat = Registration.status == RegistrationStatus.CONFIRMED
    db.session.execute(
        sa.update(Registration).where(Registration.event_id == event.id, seat)
        .values(ical_sequence=Registration.ical_sequence + 1)
        .execution_options(synchronize_session="evaluate"))
    earlier = aliased(Message)
    unsent_welcome = (
        sa.select(earlier.kind)
        .where(earlier.registration_id == Registration.id,
               earlier.status == MessageStatus.PENDING, earlier.kind.in_(WELCOME_KINDS))
        .order_by(earlier.id.desc())
        .limit(1)
        .correlate(Registration)
        .scalar_subquery()
    )
    seats = _rows(event, now, MessageKind.UPDATE, IcalMethod.REQUEST, detail,
                  seat, unsent_welcome.is_(None))
    seats += _rows(event, now, unsent_welcome, IcalMethod.REQUEST, None,
                   seat, unsent_welcome.is_not(None))
    # Everything older than the version just queued: its sequence is below the seat's now.
    holders = sa.select(Registration.id).where(Registration.event_id == event.id, seat)
    current = (sa.select(Registration.ical_sequence)
               .where(Registration.id == Message.registration_id).scalar_subquery())
    skip_pending_where(sa.and_(Message.registration_id.in_(holders),
                               Message.ical_sequence < current),
                       "superseded", kinds=SUPERSEDED_KINDS)

    waiting = 0
    if "time" in changed:
        queue = Registration.status == RegistrationStatus.WAITLISTED
        skip_pending_where(
            Message.registration_id.in_(
                sa.select(Registration.id).where(Registration.event_id == event.id, queue)),
            "superseded", kinds=(MessageKind.UPDATE,))
        waiting = _rows(event, now, MessageKind.UPDATE, None, detail, queue)
    return seats + waiting, waiting
