"""The dispatcher: claim due outbox rows, check each still applies, send it, record the outcome.

The database decides who sends what: a row is sent only by the dispatcher holding its claim,
and no transaction stays open while SMTP talks. A crash between the server's 250 and the
"sent" commit re-sends that one message (same Message-ID): the documented at-least-once gap.
"""

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from extensions import db
from notifications import transports
from notifications.mail import UnsendableMessage, build_message
from notifications.models import Message

log = logging.getLogger(__name__)

# Back-off after the n-th failed attempt: 60 s · 2^(n-1), capped at an hour, then jittered
# down by up to half so that a relay's outage doesn't end in a thundering herd.
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 3600
# Messages only a seat holder gets; a waiting-list person hears nothing of these.
SEAT_ONLY_KINDS = ("confirmation", "promotion", "reminder", "follow_up")


@dataclass
class DispatchSummary:
    """Counts of what one dispatch did; `stopped` says why it gave up early, if it did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    released: int = 0
    stopped: str | None = None

    def __str__(self) -> str:
        text = (
            f"dispatch: {self.sent} sent, {self.failed} failed, {self.skipped} skipped, "
            f"{self.retrying} retrying"
        )
        if self.released:
            text += f", {self.released} left pending"
        return text

    def add(self, other: "DispatchSummary") -> None:
        """Add another run's counts to these."""
        for field in fields(self):
            if field.name != "stopped":
                setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        self.stopped = self.stopped or other.stopped


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the given number of failed attempts (never more than an hour)."""
    base = min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    return timedelta(seconds=(rng or random).uniform(base / 2, base))


def skip_reason(message: Message, now: datetime) -> str | None:
    """Why a due message must not be sent any more, or None if it still applies."""
    registration, event = message.registration, message.event
    if now >= message.expires_at:
        return "expired"
    # A cancellation is the one message that still goes once everything is cancelled.
    if message.kind != "cancellation":
        if event.is_cancelled:
            return "event cancelled"
        if registration.status == "cancelled":
            return "cancelled"
    if message.kind in SEAT_ONLY_KINDS and registration.status != "confirmed":
        return "not confirmed"
    if message.kind == "reminder" and now >= event.starts_at:
        return "expired"  # never a reminder once the session has started
    if message.kind == "waitlisted" and registration.status != "waitlisted":
        return "superseded"  # promoted meanwhile: the promotion email says what is true now
    if message.ical_sequence is not None and message.ical_sequence < registration.ical_sequence:
        return "superseded"  # a newer version (a reschedule or a CANCEL) replaces this one
    return None


def claim(now: datetime, token: str, limit: int, lease: timedelta) -> list[int]:
    """Claim up to `limit` due rows for this dispatcher in one statement; their ids, due first."""
    due = (
        sa.select(Message.id)
        .where(
            Message.status == "pending",
            Message.due_at <= now,
            sa.or_(Message.lease_until.is_(None), Message.lease_until < now),
        )
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
        .values(claim_token=token, lease_until=now + lease)
        .returning(Message.id, Message.due_at)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return [row.id for row in sorted(rows, key=lambda row: (row.due_at, row.id))]


def _load(message_id: int, token: str) -> Message | None:
    return db.session.scalar(
        sa.select(Message)
        .options(joinedload(Message.registration), joinedload(Message.event))
        .where(Message.id == message_id, Message.claim_token == token,
               Message.status == "pending")
        .execution_options(populate_existing=True)
    )


def _finish(message_id: int, token: str, **values) -> bool:
    """Record an outcome and drop the claim, but only while this dispatcher still holds it."""
    result = db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.claim_token == token)
        .values(claim_token=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        log.warning("message %s: claim lost before its outcome was recorded", message_id)
        return False
    return True


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


def _record_failure(summary, message_id, token, now, attempts, expires_at, reply):
    next_at = now + retry_delay(attempts)
    common = {"attempts": attempts, "last_attempt_at": now, "last_reply": reply}
    if next_at >= expires_at:
        _finish(message_id, token, status="skipped", skip_reason="expired", **common)
        summary.skipped += 1
    else:
        _finish(message_id, token, due_at=next_at, **common)
        summary.retrying += 1
    log.info("message %s: attempt %s failed (%s)", message_id, attempts, reply)


def dispatch(
    now: datetime,
    worker_id: str | None = None,
    batch_size: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DispatchSummary:
    """Send one batch of the messages due at `now`; call with no transaction of your own open."""
    config = current_app.config
    limit = batch_size or config["DISPATCH_BATCH_SIZE"]
    lease = timedelta(seconds=config["CLAIM_LEASE_SECONDS"])
    token = uuid.uuid4().hex
    worker = worker_id or token[:8]
    summary = DispatchSummary()
    ids = claim(now, token, limit, lease)
    summary.claimed = len(ids)
    if not ids:
        return summary
    # Time is a parameter here, so the lease can't be renewed against the wall clock: stop
    # well inside it (measured on our own stopwatch) before another dispatcher may take over.
    deadline = time.monotonic() + lease.total_seconds() / 2

    with transports.open_transport(config) as transport:
        for position, message_id in enumerate(ids):
            if position and (time.monotonic() > deadline or (should_stop and should_stop())):
                summary.released += release(ids[position:], token)
                log.info("dispatcher %s: %s claims given back", worker, summary.released)
                break
            message = _load(message_id, token)
            if message is None:  # another dispatcher took it over after our lease ran out
                db.session.rollback()
                continue
            reason = skip_reason(message, now)
            if reason:
                _finish(message_id, token, status="skipped", skip_reason=reason)
                summary.skipped += 1
                continue
            # Plain values only from here on: the commit below expires every loaded object.
            attempts, expires_at = message.attempts + 1, message.expires_at
            try:
                mail = build_message(message, config, now)
            except UnsendableMessage as exc:
                _finish(message_id, token, status="failed", attempts=attempts,
                        last_attempt_at=now, last_reply=f"not sent: {exc}")
                summary.failed += 1
                continue
            except Exception as exc:
                # A bug must not lose mail nor jam the queue behind one row: retry it later.
                log.exception("message %s: could not be built", message_id)
                db.session.rollback()
                _record_failure(summary, message_id, token, now, attempts, expires_at,
                                f"not built: {type(exc).__name__}: {exc}")
                continue
            db.session.commit()  # no transaction (nor SQLite's write lock) held across SMTP

            try:
                outcome = transport.send(mail)
            except transports.SenderRejected as exc:
                summary.released += release(ids[position:], token)
                summary.stopped = f"the mail server refused us: {exc.reply}"
                log.error(
                    "DISPATCH STOPPED: the mail server refused the sender or our login (%s); "
                    "%s messages left pending. Check MAIL_FROM and the SMTP_* settings.",
                    exc.reply, summary.released,
                )
                break

            if outcome.status == transports.SENT:
                _finish(message_id, token, status="sent", sent_at=now, attempts=attempts,
                        last_attempt_at=now, last_reply=outcome.reply)
                summary.sent += 1
            elif outcome.status == transports.PERMANENT:
                _finish(message_id, token, status="failed", attempts=attempts,
                        last_attempt_at=now, last_reply=outcome.reply)
                summary.failed += 1
                log.warning("message %s: refused for good (%s)", message_id, outcome.reply)
            else:
                _record_failure(summary, message_id, token, now, attempts, expires_at,
                                outcome.reply)
    return summary


def dispatch_due(
    clock: Callable[[], datetime],
    worker_id: str | None = None,
    batch_size: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DispatchSummary:
    """Dispatch batch after batch until nothing more is due; the clock is read once per batch."""
    limit = batch_size or current_app.config["DISPATCH_BATCH_SIZE"]
    total = DispatchSummary()
    while True:
        summary = dispatch(clock(), worker_id, limit, should_stop)
        total.add(summary)
        done = summary.sent + summary.failed + summary.skipped + summary.retrying
        # A short batch means the queue is empty; a stop, a release or no progress ends the run.
        if summary.claimed < limit or summary.stopped or summary.released or not done:
            return total
        if should_stop and should_stop():
            return total
