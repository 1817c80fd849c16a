"""The dispatcher: claim due outbox rows, check each still applies, send it, record the outcome.

The database decides who sends what: a row is sent only by the dispatcher holding its claim,
and no transaction stays open while SMTP talks. A crash between the server's 250 and the
"sent" commit re-sends that message (same Message-ID): the documented at-least-once gap, one
message wide, or up to DISPATCH_MARK_BATCH messages when "sent" marks are written in groups.
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
from notifications.claims import claim, release, retry_at, skip_reason
from notifications.mail import UnsendableMessage, build_message
from notifications.models import (
    Message,
    MessageStatus,
)
from registration.models import Registration

log = logging.getLogger(__name__)

# The attempt log keeps the latest attempts only, so a row stays small through a long outage.
ATTEMPT_LOG_LIMIT = 20
REPLY_LIMIT = 500
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


@dataclass(frozen=True)
class _Attempt:
    """What recording one attempt needs, read from the row before sending."""

    message_id: int
    number: int
    expires_at: datetime
    history: list | None
    # The person had their data deleted: once this message is done with, the row keeps
    # neither their address nor the server's replies about it.
    forget: bool = False
    # What the log names a message by, with its id: never an address, a name or a token.
    kind: str = ""


def _mark_sent(message_ids):
    # Only where this dispatcher still holds the claim; RETURNING says where that was.
    return (
        sa.update(Message)
        .where(Message.id.in_(message_ids), Message.claim_token == sa.bindparam("token"))
        .values(status=MessageStatus.SENT, sent_at=sa.bindparam("now"),
                last_attempt_at=sa.bindparam("now"),
                attempts=Message.attempts + 1, claim_token=None, lease_until=None)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )


# Built once: with one mark per message (the default) its construction would cost as much as
# running it.
_MARK_ONE_SENT = _mark_sent([sa.bindparam("mark_id")]).values(
    last_reply=sa.bindparam("reply"),
    attempt_log=sa.bindparam("log", type_=Message.attempt_log.type),
)


# What a row keeps of a person who had their data deleted, once its message is done with.
_FORGOTTEN = {"recipient": "", "last_reply": None, "attempt_log": None}


def _with_entry(history: list | None, now: datetime, outcome: str, reply: str) -> list:
    entry = {"at": now.isoformat(), "outcome": outcome, "reply": reply[:REPLY_LIMIT]}
    return [*(history or [])][-(ATTEMPT_LOG_LIMIT - 1):] + [entry]


class _Batch:
    """The claimed ids of one dispatch and the outcomes recorded for them.

    Every outcome is written only where this dispatcher still holds the claim. "Sent" marks
    wait until `mark_batch` consecutive messages have gone and are then written in one UPDATE;
    any other outcome, a stop and the end of the batch write the waiting marks first.
    """

    def __init__(self, ids, token, now, worker, mark_batch, summary):
        self.ids, self.token, self.now, self.worker = ids, token, now, worker
        self.started = time.monotonic()
        self.mark_batch = mark_batch
        self.summary = summary
        self.waiting = []  # (attempt, reply) sent but not yet marked
        self.position = 0  # index in ids of the message being handled

    def sent(self, attempt: _Attempt, reply: str) -> None:
        """The server accepted the message."""
        self.summary.sent += 1
        self.waiting.append((attempt, reply))
        if len(self.waiting) >= self.mark_batch:
            self.flush()

    def flush(self) -> None:
        """Write the waiting "sent" marks in one statement."""
        if not self.waiting:
            return
        waiting = self.waiting
        replies = {a.message_id: reply for a, reply in waiting}
        histories = {a.message_id: _with_entry(a.history, self.now, transports.SENT, reply)
                     for a, reply in waiting}
        common = {"now": self.now, "token": self.token}
        if len(waiting) == 1:
            [(message_id, reply)] = replies.items()
            result = db.session.execute(_MARK_ONE_SENT, {
                **common, "mark_id": message_id, "reply": reply,
                "log": histories[message_id]})
        else:
            json_type = Message.attempt_log.type
            result = db.session.execute(
                _mark_sent(replies).values(
                    last_reply=sa.case(replies, value=Message.id),
                    attempt_log=sa.case({message_id: sa.literal(history, json_type)
                                         for message_id, history in histories.items()},
                                        value=Message.id)),
                common)
        marked = set(result.scalars())
        forget = [a.message_id for a, _ in waiting if a.forget and a.message_id in marked]
        if forget:
            db.session.execute(sa.update(Message).where(Message.id.in_(forget))
                               .values(**_FORGOTTEN)
                               .execution_options(synchronize_session=False))
        db.session.commit()
        self.waiting = []
        for message_id in replies.keys() - marked:
            log.warning("message %s: sent, but its claim was lost before it was marked; "
                        "it may be sent again", message_id)

    def finish(self, attempt: _Attempt | None, message_id: int, outcome: str | None = None,
               reply: str | None = None, **values) -> None:
        """Record an outcome other than "sent" (with an attempt-log entry if it was one)."""
        self.flush()
        if attempt is not None:
            values.update(attempts=attempt.number, last_attempt_at=self.now, last_reply=reply,
                          attempt_log=_with_entry(attempt.history, self.now, outcome, reply))
            ended = values.get("status", MessageStatus.PENDING) != MessageStatus.PENDING
            if attempt.forget and ended:
                values.update(_FORGOTTEN)
        result = db.session.execute(
            sa.update(Message)
            .where(Message.id == message_id, Message.claim_token == self.token)
            .values(claim_token=None, lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if result.rowcount != 1:
            log.warning("message %s: claim lost before its outcome was recorded", message_id)

    def failed(self, attempt: _Attempt, outcome: str, reply: str) -> None:
        """Refused for good: the row fails now."""
        self.finish(attempt, attempt.message_id, outcome, reply, status=MessageStatus.FAILED)
        self.summary.failed += 1

    def retry(self, attempt: _Attempt, outcome: str, reply: str,
              logged: str | None = None) -> None:
        """Failed for now: due again after the back-off, or skipped if its window closes first.
        The log gets `logged`, else the reply with its addresses masked."""
        next_at = retry_at(self.now, attempt.number, attempt.expires_at)
        if next_at is None:
            self.finish(attempt, attempt.message_id, outcome, reply, status=MessageStatus.SKIPPED,
                        skip_reason="expired")
            self.summary.skipped += 1
        else:
            self.finish(attempt, attempt.message_id, outcome, reply, due_at=next_at)
            self.summary.retrying += 1
        log.info("message %s (%s): attempt %s failed (%s)", attempt.message_id, attempt.kind,
                 attempt.number, transports.masked(reply) if logged is None else logged)

    def give_back(self, position: int) -> None:
        """Release the claims from this position on, marks first."""
        self.flush()
        self.summary.released += release(self.ids[position:], self.token)

    def abandon(self) -> None:
        """After an unexpected error: keep what can be kept, without hiding that error."""
        try:
            db.session.rollback()
            self.flush()
            # The message being handled may have reached the server: it keeps its lease.
            self.summary.released += release(self.ids[self.position + 1:], self.token)
        except Exception:
            log.exception("dispatcher %s: could not record the outcomes of an interrupted batch; "
                          "%s sent messages will be sent again once their lease ends",
                          self.worker, len(self.waiting))

    def send_all(self, transport, config, deadline: float, should_stop) -> None:
        """Check, build, send and record each claimed message in turn."""
        loaded, loaded_until = {}, 0
        for position, message_id in enumerate(self.ids):
            self.position = position
            if time.monotonic() > deadline or (should_stop and should_stop()):
                self.give_back(position)
                log.info("dispatcher %s: stopping early, %s claims given back", self.worker,
                         self.summary.released)
                return
            if position >= loaded_until:
                loaded_until = position + LOAD_CHUNK
                loaded = _load(self.ids[position:loaded_until], self.token)
            message = loaded.pop(message_id, None)
            if message is None:  # another dispatcher took it over after our lease ran out
                continue
            forget = message.registration.anonymised_at is not None
            # `now` is when the batch began; a batch may run a while, and a reminder must not go
            # out after the start, so each message is checked at the batch's `now` plus the
            # time the batch has taken so far.
            elapsed = timedelta(seconds=time.monotonic() - self.started)
            reason = skip_reason(message, self.now + elapsed)
            if reason:
                self.finish(None, message_id, status=MessageStatus.SKIPPED, skip_reason=reason,
                            **(_FORGOTTEN if forget else {}))
                self.summary.skipped += 1
                continue
            attempt = _Attempt(message_id, message.attempts + 1, message.expires_at,
                               message.attempt_log, forget, message.kind)
            try:
                mail = build_message(message, config, self.now)
            except UnsendableMessage as exc:
                self.failed(attempt, "unsendable", f"not sent: {exc}")
                continue
            except Exception as exc:
                # A bug must not lose mail nor jam the queue behind one row: retry it later.
                # The frames say where; the exception's own words may quote the row's data
                # (a name, an address), so they go to the console's row, not to the log.
                log.error("message %s (%s): could not be built (%s)\n%s", message_id,
                          message.kind, type(exc).__name__,
                          "".join(traceback.format_tb(exc.__traceback__)).rstrip())
                db.session.rollback()
                self.retry(attempt, "error", f"not built: {type(exc).__name__}: {exc}",
                           logged=f"not built: {type(exc).__name__}")
                continue
            _end_transaction()

            try:
                outcome = transport.send(mail)
            except transports.SenderRejected as exc:
                self.give_back(position)
                self.summary.stopped = (
                    f"the mail server refused us: {transports.masked(exc.reply)}")
                log.error(
                    "DISPATCH STOPPED: the mail server refused the sender or our login (%s); "
                    "%s messages left pending. Check MAIL_FROM and the SMTP_* settings.",
                    transports.masked(exc.reply), self.summary.released,
                )
                return
            if outcome.status == transports.SENT:
                self.sent(attempt, outcome.reply)
            elif outcome.status == transports.PERMANENT:
                self.failed(attempt, outcome.status, outcome.reply)
                log.warning("message %s (%s): refused for good (%s)", message_id, message.kind,
                            transports.masked(outcome.reply))
            else:
                self.retry(attempt, outcome.status, outcome.reply)
        self.flush()


def _mark_batch(config) -> int:
    return max(int(config.get("DISPATCH_MARK_BATCH", 1)), 1)


def dispatch(
    now: datetime,
    worker_id: str | None = None,
    batch_size: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    transport=None,
) -> DispatchSummary:
    """Send one batch of the messages due at `now`; call with no transaction of your own open.

    `should_stop` is asked before each message; once it says yes, the remaining claims are
    given back. A `transport` may be passed in to keep one connection across batches.
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
    deadline = time.monotonic() + lease.total_seconds() / 2
    batch = _Batch(ids, token, now, worker, _mark_batch(config), summary)
    opened = nullcontext(transport) if transport else transports.open_transport(config)
    with _rows_stay_loaded(), opened as transport:
        try:
            batch.send_all(transport, config, deadline, should_stop)
        except BaseException:
            batch.abandon()
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
    # One SMTP connection for the whole run, opened only if something is sent.
    with transports.open_transport(config) as transport:
        while not (should_stop and should_stop()):
            summary = dispatch(clock(), worker_id, limit, should_stop, transport)
            total.add(summary)
            done = summary.sent + summary.failed + summary.skipped + summary.retrying
            # A short batch means the queue is empty; a stop, a release or no progress ends it.
            if summary.claimed < limit or summary.stopped or summary.released or not done:
                break
    return total
