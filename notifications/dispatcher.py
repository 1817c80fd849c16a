"""The dispatcher: claim due outbox rows, check each still applies, send it, record the outcome.

The database decides who sends what: a row is sent only by the dispatcher holding its claim,
and no transaction stays open while SMTP talks. A crash between the server's 250 and the
"sent" commit re-sends that message (same Message-ID): the documented at-least-once gap, one
message wide with one connection, up to SMTP_CONNECTIONS with several (those in flight: each
connection's outcome is marked as soon as it is known), or DISPATCH_MARK_BATCH more when marks
are written in larger groups.
"""

import logging
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from extensions import db
from notifications import transports
from notifications.claims import claim, skip_reason
from notifications.mail import UnsendableMessage, build_message
from notifications.models import Message, MessageStatus
from notifications.outcomes import FORGOTTEN, Attempt, Batch
from notifications.senders import open_senders
from registration.models import Registration

log = logging.getLogger(__name__)

# Claimed rows are read this many at a time: one query instead of one per message, while a
# change made during a batch (a cancellation) is still seen a few messages later.
LOAD_CHUNK = 20


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


def _load(message_ids: list[int], token: str) -> dict[int, Message]:
    """The rows this dispatcher still holds, with their registration and event, freshly read."""
    rows = db.session.scalars(
        sa.select(Message)
        # The person too (for the link to all their sessions): no query while building.
        .options(joinedload(Message.registration).joinedload(Registration.person),
                 joinedload(Message.event))
        .where(Message.id.in_(message_ids), Message.claim_token == token,
               Message.status == MessageStatus.PENDING)
        .execution_options(populate_existing=True)
    ).all()
    _end_transaction()
    return {message.id: message for message in rows}


def _end_transaction() -> None:
    # Outside a request every SQLite transaction holds the write lock (BEGIN IMMEDIATE): none
    # may stay open while SMTP talks, nor while another row is built.
    if db.session().in_transaction():
        db.session.commit()


@contextmanager
def _rows_stay_loaded():
    """Commits inside leave loaded rows as they are, so building an email from a row read
    earlier runs no query (and opens no transaction); everything is expired afterwards, as
    callers expect after a commit. The rows are never written through the ORM here."""
    session = db.session()
    previous, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
    finally:
        session.expire_on_commit = previous
        session.expire_all()


def _send_all(batch: Batch, senders, config, deadline: float, should_stop) -> None:
    """Check, build and send each claimed message in turn, recording outcomes as they come.

    All database work and all building happen here, in the caller's thread; the senders only
    talk SMTP. While every connection is busy, the next message is built before waiting.
    """
    loaded, loaded_until = {}, 0
    for position, message_id in enumerate(batch.ids):
        batch.position = position
        if _stopping(batch, deadline, should_stop):
            _stop(batch, senders, position)
            return
        if position >= loaded_until:
            loaded_until = position + LOAD_CHUNK
            loaded = _load(batch.ids[position:loaded_until], batch.token)
        message = loaded.pop(message_id, None)
        if message is None:  # another dispatcher took it over after our lease ran out
            continue
        forget = message.registration.anonymised_at is not None
        # `now` is when the batch began; a batch may run a while, and a reminder must not go
        # out after the start, so each message is checked at the batch's `now` plus the
        # time the batch has taken so far.
        elapsed = timedelta(seconds=time.monotonic() - batch.started)
        reason = skip_reason(message, batch.now + elapsed)
        if reason:
            batch.finish(None, message_id, status=MessageStatus.SKIPPED, skip_reason=reason,
                         **(FORGOTTEN if forget else {}))
            batch.summary.skipped += 1
            continue
        attempt = Attempt(message_id, message.attempts + 1, message.expires_at,
                          message.attempt_log, forget, message.kind)
        try:
            mail = build_message(message, config, batch.now)
        except UnsendableMessage as exc:
            batch.failed(attempt, "unsendable", f"not sent: {exc}")
            continue
        except Exception as exc:
            # A bug must not lose mail nor jam the queue behind one row: retry it later.
            # The frames say where; the exception's own words may quote the row's data
            # (a name, an address), so they go to the console's row, not to the log.
            log.error("message %s (%s): could not be built (%s)\n%s", message_id,
                      message.kind, type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)).rstrip())
            db.session.rollback()
            batch.retry(attempt, "error", f"not built: {type(exc).__name__}: {exc}",
                        logged=f"not built: {type(exc).__name__}")
            continue
        _end_transaction()
        # A free connection: wait for one only when all are busy (the message is built).
        batch.record(senders.finished(wait=senders.in_flight >= senders.capacity))
        if _stopping(batch, deadline, should_stop):
            _stop(batch, senders, position)
            return
        senders.submit(attempt, mail)
        batch.record(senders.finished())
    _stop(batch, senders, len(batch.ids))


def _stopping(batch: Batch, deadline: float, should_stop) -> bool:
    return (batch.rejected is not None or time.monotonic() > deadline
            or bool(should_stop and should_stop()))


def _stop(batch: Batch, senders, position: int) -> None:
    """Record the messages still in flight, then give back the claims from `position` on and
    those of messages the server refused us for."""
    while senders.in_flight:
        batch.record(senders.finished(wait=True))
    if position < len(batch.ids) or batch.rejected_ids:
        batch.give_back(position)
    else:
        batch.flush()
    if batch.rejected is not None:
        reply = transports.masked(batch.rejected.reply)
        batch.summary.stopped = f"the mail server refused us: {reply}"
        log.error("DISPATCH STOPPED: the mail server refused the sender or our login (%s); "
                  "%s messages left pending. Check MAIL_FROM and the SMTP_* settings.",
                  reply, batch.summary.released)
    elif position < len(batch.ids):
        log.info("dispatcher %s: stopping early, %s claims given back", batch.worker,
                 batch.summary.released)


def _in_flight_outcomes(senders) -> list:
    """After an unexpected error: the outcomes of the messages the other connections still
    carry, waited for, so that those their servers accepted are marked sent rather than sent
    again when their lease ends."""
    finished = []
    try:
        while senders.in_flight:
            finished += senders.finished(wait=True)
    except Exception:
        log.exception("could not collect the messages in flight after an error")
    return finished


def _mark_batch(config) -> int:
    # Outcomes that finish together are marked together anyway; a larger group only by choice,
    # since each one widens what a crash can re-send.
    return max(int(config.get("DISPATCH_MARK_BATCH", 1)), 1)


def dispatch(
    now: datetime,
    worker_id: str | None = None,
    batch_size: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    senders=None,
) -> DispatchSummary:
    """Send one batch of the messages due at `now`; call with no transaction of your own open.

    `should_stop` is asked before each message; once it says yes, the messages in flight are
    finished and the remaining claims given back. `senders` (from open_senders) may be passed
    in to keep the connections across batches.
    """
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
    # The messages in flight then finish side by side within a few SMTP time-outs, which the
    # other half of the lease covers (settings.py: at least 6 × SMTP_TIMEOUT_SECONDS).
    deadline = time.monotonic() + lease.total_seconds() / 2
    opened = nullcontext(senders) if senders else open_senders(config)
    with _rows_stay_loaded(), opened as senders:
        batch = Batch(ids, token, now, worker, _mark_batch(config), summary)
        try:
            _send_all(batch, senders, config, deadline, should_stop)
        except BaseException:
            batch.abandon(_in_flight_outcomes(senders))
            raise
    log.info("dispatcher %s: %s claimed, %s sent, %s failed, %s skipped, %s retrying, "
             "%s given back", worker, summary.claimed, summary.sent, summary.failed,
             summary.skipped, summary.retrying, summary.released)
    return summary


def dispatch_due(
    clock: Callable[[], datetime],
    worker_id: str | None = None,
    batch_size: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DispatchSummary:
    """Dispatch batch after batch until nothing more is due; the clock is read once per batch."""
    config = current_app.config
    limit = batch_size or config["DISPATCH_BATCH_SIZE"]
    total = DispatchSummary()
    # The SMTP connections last the whole run, each opened only when a message needs it.
    with open_senders(config) as senders:
        while not (should_stop and should_stop()):
            summary = dispatch(clock(), worker_id, limit, should_stop, senders)
            total.add(summary)
            done = summary.sent + summary.failed + summary.skipped + summary.retrying
            # A short batch means the queue is empty; a stop, a release or no progress ends it.
            if summary.claimed < limit or summary.stopped or summary.released or not done:
                break
    return total
