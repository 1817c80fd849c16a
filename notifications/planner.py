"""What email a change causes: the rows written in the same transaction as the change."""

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from extensions import db
from notifications.models import Message
from registration.models import Registration

# A repeat sign-up re-sends the confirmation, but never more than this often.
CONFIRMATIONS_PER_DAY = 3


def _message_id() -> str:
    domain = current_app.config["MAIL_FROM"].rpartition("@")[2]
    return f"<{uuid.uuid4().hex}@{domain}>"


def _queue(registration: Registration, kind: str, now: datetime, method=None) -> Message:
    message = Message(
        registration=registration,
        event=registration.event,
        kind=kind,
        status="pending",
        message_id=_message_id(),
        recipient=registration.email,
        ical_method=method,
        ical_sequence=registration.ical_sequence if method else None,
        created_at=now,
        due_at=now,
        expires_at=registration.event.ends_at,
    )
    db.session.add(message)
    return message


def queue_signup(registration: Registration, now: datetime) -> Message | None:
    """Queue the confirmation (with invite) or the waiting-list notice for a sign-up.

    A repeat sign-up calls this again; past the daily allowance it queues nothing.
    """
    recent = db.session.scalar(
        sa.select(sa.func.count(Message.id)).where(
            Message.registration_id == registration.id,
            Message.kind.in_(("confirmation", "waitlisted")),
            Message.created_at > now - timedelta(days=1),
        )
    ) if registration.id is not None else 0
    if recent >= CONFIRMATIONS_PER_DAY:
        return None
    if registration.status == "confirmed":
        return _queue(registration, "confirmation", now, method="REQUEST")
    return _queue(registration, "waitlisted", now)


def queue_promotion(registration: Registration, now: datetime) -> Message:
    """Queue the email telling a waiting-list person they have a seat, with the invite."""
    return _queue(registration, "promotion", now, method="REQUEST")


def queue_cancellation(registration: Registration, was_confirmed: bool, now: datetime) -> Message:
    """Queue the cancellation: a CANCEL invite for a seat holder, a plain notice otherwise."""
    if was_confirmed:
        registration.ical_sequence += 1
        return _queue(registration, "cancellation", now, method="CANCEL")
    return _queue(registration, "cancellation", now)
