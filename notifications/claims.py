"""The outbox's claims: which due rows a dispatcher takes (leased on the database's clock),
gives back or ends as expired; whether a due message still applies; when a failed one is
tried again."""

import random
from datetime import datetime, timedelta

import sqlalchemy as sa

from extensions import database_now, db
from notifications.models import (
    BOUNCED,
    SEAT_ONLY_KINDS,
    UNSUBSCRIBABLE_KINDS,
    Message,
    MessageKind,
    MessageStatus,
    lease_is_free,
)
from registration.models import RegistrationStatus

# Back-off after the n-th failed attempt: 60 s · 2^(n-1), capped at an hour, then jittered
# down by up to half so that a relay's outage doesn't end in a thundering herd.
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 3600
LAST_TRY_BEFORE_EXPIRY = timedelta(minutes=1)


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the given number of failed attempts (never more than an hour)."""
    base = min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    return timedelta(seconds=(rng or random).uniform(base / 2, base))


def retry_at(now: datetime, attempts: int, expires_at: datetime) -> datetime | None:
    """When to try again after the given number of failed attempts, or None when the message's
    window closes first.

    A retry the back-off would put after the window is brought forward to just before it
    closes, so a relay that comes back late in the window still gets the message.
    """
    next_at = now + retry_delay(attempts)
    if next_at < expires_at:
        return next_at
    last_try = expires_at - LAST_TRY_BEFORE_EXPIRY
    return last_try if last_try > now else None


def skip_reason(message: Message, now: datetime) -> str | None:
    """Why a due message must not be sent any more, or None if it still applies."""
    registration, event = message.registration, message.event
    if now >= message.expires_at:
        return "expired"
    if registration.person is not None and registration.person.is_undeliverable:
        # The address bounced for good: nothing goes to it, the link to all the person's
        # sessions neither, until the mark is cleared (a row queued since, or held meanwhile).
        return BOUNCED
    if message.kind == MessageKind.MY_LINK:
        # About the person, not the session: it goes whatever became of the registration it
        # was queued with, as long as the person (and their link) still exists.
        if registration.anonymised_at is not None or registration.person is None:
            return "personal data deleted"
        return None
    # A cancellation is the one message that still goes once everything is cancelled.
    if message.kind != MessageKind.CANCELLATION:
        if event.is_cancelled:
            return "event cancelled"
        if registration.status == RegistrationStatus.CANCELLED:
            return "cancelled"
        # A row a dispatcher held while the data was deleted escaped the wipe: only an unsent
        # cancellation keeps its address (see planner.forget_recipients).
        if registration.anonymised_at is not None:
            return "personal data deleted"
    if message.kind in UNSUBSCRIBABLE_KINDS and registration.unsubscribed_at is not None:
        return "unsubscribed"  # a row a dispatcher held as the link was used
    if message.kind in SEAT_ONLY_KINDS and registration.status != RegistrationStatus.CONFIRMED:
        return "not confirmed"
    if message.kind == MessageKind.REMINDER and now >= event.starts_at:
        return "expired"  # never a reminder once the session has started
    if (message.kind == MessageKind.WAITLISTED
            and registration.status != RegistrationStatus.WAITLISTED):
        return "superseded"  # promoted meanwhile: the promotion email says what is true now
    if message.ical_sequence is not None and message.ical_sequence < registration.ical_sequence:
        return "superseded"  # a newer version (a reschedule or a CANCEL) replaces this one
    return None


def claim(now: datetime, token: str, limit: int, lease: timedelta) -> list[int]:
    """Claim up to `limit` due rows for this dispatcher in one statement; their ids, due first."""
    due = (
        sa.select(Message.id)
        .where(Message.status == MessageStatus.PENDING, Message.due_at <= now, lease_is_free())
        # due_at alone, so PostgreSQL reads the partial index in order and stops at the limit.
        .order_by(Message.due_at)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        # Rows another dispatcher is claiming right now are passed over, not waited for.
        # (SQLite has no row locks; BEGIN IMMEDIATE serialises the whole statement there.)
        due = due.with_for_update(skip_locked=True)
    rows = db.session.execute(
        sa.update(Message)
        .where(Message.id.in_(due))
        .values(claim_token=token, lease_until=database_now(lease.total_seconds()))
        .returning(Message.id, Message.due_at)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return [row.id for row in sorted(rows, key=lambda row: (row.due_at, row.id))]


def release(message_ids: list[int], token: str) -> int:
    """Give back claims without an attempt, so the rows are due again at once."""
    if not message_ids:
        return 0
    result = db.session.execute(
        sa.update(Message)
        .where(Message.id.in_(message_ids), Message.claim_token == token)
        .values(claim_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def skip_expired(now: datetime) -> int:
    """End every unclaimed pending message whose window has closed as skipped; how many."""
    result = db.session.execute(
        sa.update(Message)
        .where(
            Message.status == MessageStatus.PENDING,
            # Implied by the next line (a row is never due after its window), but it lets both
            # databases answer from the partial index on pending rows' due_at.
            Message.due_at <= now,
            Message.expires_at <= now,
            # A row a dispatcher holds is left to it: it checks the window before sending.
            lease_is_free(),
        )
        .values(status=MessageStatus.SKIPPED, skip_reason="expired", claim_token=None,
                lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount
