"""Reminders written when they fall due: one INSERT … SELECT per session over its seat holders,
run before each dispatch, each reminder planned once per registration and slot."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from extensions import db
from notifications.models import Message, MessageKind, MessageStatus
from notifications.outbox_sql import insert, message_ids, typed
from notifications.planner import Offset, ReminderSlot, reminder_slots
from registration.models import Event, EventStatus, Registration, RegistrationStatus

# How long after a reminder's due time a seat taken before it may still be committing (a request
# in flight as it fell due); after that nobody new can qualify, and the slot is settled.
SETTLED_AFTER = timedelta(minutes=10)


def slot_key(offset: Offset, starts_at: datetime) -> str:
    """A reminder slot's name: its distance before the start in seconds (not its label: "1d"
    and "24h" are one reminder, whatever REMINDER_OFFSETS says tomorrow) and the start it
    belongs to, so a moved session's reminders are planned afresh for its new time."""
    return f"{int(offset.before.total_seconds())}s@{starts_at.isoformat()}"


def wants_reminders() -> tuple:
    """Registrations that get reminders: seat holders who still want them and still have
    their data. (Of a reminder due at some time, only those who had their seat before it.)"""
    return (
        Registration.status == RegistrationStatus.CONFIRMED,
        Registration.unsubscribed_at.is_(None),
        Registration.anonymised_at.is_(None),
    )


def slots_of(event: Event, offsets: tuple[Offset, ...]) -> list[ReminderSlot]:
    """The event's reminders still to be sent for its current time: those due after its start
    last moved (a reschedule's update told people of the new time instead)."""
    slots = reminder_slots(event.starts_at, offsets, datetime.min.replace(tzinfo=UTC))
    if event.time_changed_at is None:
        return slots
    return [slot for slot in slots if slot.due_at > event.time_changed_at]


def current_slot(event: Event, offsets: tuple[Offset, ...], now: datetime) -> ReminderSlot | None:
    """The event's reminder whose window holds `now`, if it is one still to be sent."""
    return next((slot for slot in slots_of(event, offsets)
                 if slot.due_at <= now < slot.expires_at), None)


def plan_due_reminders(now: datetime) -> int:
    """Write the reminder rows due now, one statement per session in a reminder window not yet
    settled; how many rows were written. Flushes; the caller commits.

    Safe beside another planner: the unique slot index lets exactly one of them write each row.
    """
    offsets = current_app.config["REMINDER_OFFSETS"]
    if not offsets:
        return 0
    candidates = db.session.scalars(
        sa.select(Event)
        .where(Event.starts_at > now, Event.starts_at <= now + offsets[0].before,
               Event.status != EventStatus.CANCELLED)
        # One order for every planner (sessions often share a start), so two never lock the
        # same rows in opposite orders.
        .order_by(Event.starts_at, Event.id)
    ).all()
    written = 0
    for event in candidates:
        slot = current_slot(event, offsets, now)
        if slot is None:
            continue
        key = slot_key(slot.offset, event.starts_at)
        if event.reminders_settled == key:
            continue  # every seat holder has this one: no statement over them each pass
        written += _plan_slot(event, slot, offsets, now)
        if now >= slot.due_at + SETTLED_AFTER:
            event.reminders_settled = key
    db.session.flush()
    return written


def plan_and_commit(now: datetime) -> int:
    """The step before each claim pass of a dispatch (the worker's and `flask dispatch`): the
    reminders due now written and committed, so any dispatcher may claim them."""
    try:
        written = plan_due_reminders(now)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return written


def _plan_slot(event: Event, slot: ReminderSlot, offsets: tuple[Offset, ...],
               now: datetime) -> int:
    detail = {"offset": slot.offset.label, "is_last": slot.offset == offsets[-1]}
    rows = sa.select(
        Registration.id,
        Registration.event_id,
        sa.literal(MessageKind.REMINDER.value),
        sa.literal(MessageStatus.PENDING.value),
        message_ids(Registration.id),
        Registration.email,
        Registration.ical_sequence,
        typed(now, Message.created_at),
        typed(slot.due_at, Message.due_at),
        typed(slot.expires_at, Message.expires_at),
        typed(detail, Message.detail),
        sa.literal(slot_key(slot.offset, event.starts_at)),
    ).join(Event, Event.id == Registration.event_id).where(
        Registration.event_id == event.id, Registration.confirmed_at < slot.due_at,
        *wants_reminders(),
        # The session as this statement sees it, in the same snapshot as its registrations: a
        # reschedule or cancellation committed since the candidates were read writes nothing.
        Event.starts_at == event.starts_at, Event.status != EventStatus.CANCELLED)
    statement = insert().from_select(
        ["registration_id", "event_id", "kind", "status", "message_id", "recipient",
         "ical_sequence", "created_at", "due_at", "expires_at", "detail", "slot"],
        rows,
    ).on_conflict_do_nothing(index_elements=["registration_id", "kind", "slot"],
                             index_where=Message.slot.is_not(None))
    # An INSERT's row count is kept only when asked for (SQLAlchemy's preserve_rowcount).
    return db.session.connection().execute(
        statement, execution_options={"preserve_rowcount": True}).rowcount


def planned_reminders(event: Event, now: datetime) -> list[tuple[ReminderSlot, int]]:
    """The event's reminders not yet written as rows, each with how many people it will go
    to as things stand: those due later, and the current one until the planner has run."""
    return planned_counts([event], now).get(event.id, [])


def planned_counts(events: list[Event], now: datetime) -> dict[int, list[tuple[ReminderSlot, int]]]:
    """planned_reminders for many events in one query, by event id (none: not there)."""
    offsets = current_app.config["REMINDER_OFFSETS"]
    slots = {(event.id, slot_key(slot.offset, event.starts_at)): slot
             for event in events
             if offsets and not event.is_cancelled and now < event.starts_at
             for slot in slots_of(event, offsets) if slot.expires_at > now}
    if not slots:
        return {}
    # The slots as a table of their own (a UNION ALL: SQLite's VALUES can't name columns).
    ahead = sa.union_all(*(
        sa.select(sa.literal(event_id, sa.Integer).label("event_id"),
                  sa.literal(key, sa.String).label("slot"),
                  typed(slot.due_at, Message.due_at).label("due_at"))
        for (event_id, key), slot in slots.items()
    )).subquery("ahead")
    written = sa.exists().where(Message.registration_id == Registration.id,
                                Message.kind == MessageKind.REMINDER, Message.slot == ahead.c.slot)
    rows = db.session.execute(
        sa.select(ahead.c.event_id, ahead.c.slot, sa.func.count())
        .select_from(Registration)
        .join(ahead, sa.and_(ahead.c.event_id == Registration.event_id,
                             Registration.confirmed_at < ahead.c.due_at))
        .where(*wants_reminders(), ~written)
        .group_by(ahead.c.event_id, ahead.c.slot))
    planned: dict[int, list[tuple[ReminderSlot, int]]] = {}
    for event_id, key, count in rows:
        planned.setdefault(event_id, []).append((slots[(event_id, key)], count))
    for entries in planned.values():
        entries.sort(key=lambda entry: entry[0].due_at)
    return planned


def planned_for(registration: Registration, now: datetime) -> list[ReminderSlot]:
    """The registration's reminders not yet written as rows that it will get as things stand."""
    event = registration.event
    offsets = current_app.config["REMINDER_OFFSETS"]
    if event.is_cancelled or now >= event.starts_at or not offsets:
        return []
    # One read: whether it still wants reminders (the planner's own rule) and which of its
    # reminders are rows already.
    rows = db.session.execute(
        sa.select(Message.slot).select_from(Registration)
        .outerjoin(Message, sa.and_(Message.registration_id == Registration.id,
                                    Message.kind == MessageKind.REMINDER))
        .where(Registration.id == registration.id, *wants_reminders())).all()
    if not rows:
        return []
    written = {slot for slot, in rows}
    return [slot for slot in slots_of(event, offsets)
            if slot.expires_at > now and registration.confirmed_at < slot.due_at
            and slot_key(slot.offset, event.starts_at) not in written]
