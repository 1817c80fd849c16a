"""What a change to a whole session (a reschedule, an edit, its cancellation) sends its
registrants, queued set-based: a handful of statements whatever the number of registrants, in
the change's transaction."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from extensions import db
from notifications.models import IcalMethod, Message, MessageKind, MessageStatus
from notifications.outbox_sql import insert, message_ids, typed
from notifications.planner import EVENT_CANCELLED, skip_pending_where
from registration.models import Event, Registration, RegistrationStatus

# The first email of a seat: sent instead of an update when it has not gone out yet.
WELCOME_KINDS = (MessageKind.CONFIRMATION, MessageKind.PROMOTION)
# What a new version of the invite replaces when it has not gone out yet.
SUPERSEDED_KINDS = (*WELCOME_KINDS, MessageKind.UPDATE, MessageKind.REMINDER)
COLUMNS = ["registration_id", "event_id", "kind", "status", "message_id", "recipient",
           "ical_method", "ical_sequence", "created_at", "due_at", "expires_at", "detail"]


def _rows(event: Event, now: datetime, kind, method: IcalMethod | None, detail: dict | None,
          *where, source=Registration) -> int:
    """One row per registration of `event` matching `where` (read from `source`, the
    registrations or a join of them), due now; how many."""
    rows = sa.select(
        Registration.id,
        Registration.event_id,
        sa.literal(kind.value) if isinstance(kind, MessageKind) else kind,
        sa.literal(MessageStatus.PENDING.value),
        message_ids(Registration.id),
        Registration.email,
        typed(method.value if method else None, Message.ical_method),
        Registration.ical_sequence,
        typed(now, Message.created_at),
        typed(now, Message.due_at),
        typed(event.ends_at, Message.expires_at),
        typed(detail, Message.detail),
    ).select_from(source).where(Registration.event_id == event.id, *where)
    # An INSERT's row count is kept only when asked for (SQLAlchemy's preserve_rowcount).
    return db.session.connection().execute(
        insert().from_select(COLUMNS, rows), execution_options={"preserve_rowcount": True}
    ).rowcount


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
    # Each seat holder's latest unsent welcome, if any: one grouped read of the session's
    # pending rows, joined (a correlated "latest" per registration is a scan each on PostgreSQL).
    latest = (
        sa.select(Message.registration_id, sa.func.max(Message.id).label("id"))
        .where(Message.event_id == event.id, Message.status == MessageStatus.PENDING,
               Message.kind.in_(WELCOME_KINDS))
        .group_by(Message.registration_id)
        .subquery()
    )
    welcome = aliased(Message)
    source = (sa.outerjoin(Registration, latest, latest.c.registration_id == Registration.id)
              .outerjoin(welcome, welcome.id == latest.c.id))
    seats = _rows(event, now, MessageKind.UPDATE, IcalMethod.REQUEST, detail,
                  seat, latest.c.id.is_(None), source=source)
    seats += _rows(event, now, welcome.kind, IcalMethod.REQUEST, None,
                   seat, latest.c.id.is_not(None), source=source)
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
    _release_future_slots(event, now)
    return seats + waiting, waiting


def queue_cancellations(event: Event, now: datetime) -> tuple[int, int]:
    """The organisers cancelled the session: each seat holder gets a CANCEL of the invite
    (a higher SEQUENCE), each waiting-list person a plain notice, and nothing else still
    unsent for them goes. Returns (how many were told, of whom on the waiting list)."""
    active = Registration.status != RegistrationStatus.CANCELLED
    skip_pending_where(
        Message.registration_id.in_(
            sa.select(Registration.id).where(Registration.event_id == event.id, active)),
        EVENT_CANCELLED, kinds=None)
    seat = Registration.status == RegistrationStatus.CONFIRMED
    db.session.execute(
        sa.update(Registration).where(Registration.event_id == event.id, seat)
        .values(ical_sequence=Registration.ical_sequence + 1)
        .execution_options(synchronize_session="evaluate"))
    detail = {"by": "organiser"}
    seats = _rows(event, now, MessageKind.CANCELLATION, IcalMethod.CANCEL, detail, seat)
    waiting = _rows(event, now, MessageKind.CANCELLATION, None, detail,
                    Registration.status == RegistrationStatus.WAITLISTED)
    _release_future_slots(event, now)
    return seats + waiting, waiting


def _release_future_slots(event: Event, now: datetime) -> None:
    """Reminders a change skipped before they were due give their slot back, so the planner
    writes each at its due time with the invite's version then. Only the older code wrote
    reminders ahead (at sign-up; migration 0012 kept them); one already due when superseded
    stays so, as it always did."""
    db.session.execute(
        sa.update(Message)
        .where(Message.event_id == event.id, Message.kind == MessageKind.REMINDER,
               Message.status == MessageStatus.SKIPPED, Message.slot.is_not(None),
               Message.due_at > now)
        .values(slot=None)
        .execution_options(synchronize_session=False))
