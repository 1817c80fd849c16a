"""What a dispatch records of each claimed message: sent (marks written in groups), failed,
retrying, skipped or given back, each only where the dispatcher still holds the claim, with
the attempt log of the server's replies."""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from extensions import db
from notifications import transports
from notifications.claims import release, retry_at
from notifications.models import Message, MessageStatus

log = logging.getLogger("notifications.dispatcher")

# The attempt log keeps the latest attempts only, so a row stays small through a long outage.
ATTEMPT_LOG_LIMIT = 20
REPLY_LIMIT = 500


@dataclass(frozen=True)
class Attempt:
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
FORGOTTEN = {"recipient": "", "last_reply": None, "attempt_log": None}


def _with_entry(history: list | None, now: datetime, outcome: str, reply: str) -> list:
    entry = {"at": now.isoformat(), "outcome": outcome, "reply": reply[:REPLY_LIMIT]}
    return [*(history or [])][-(ATTEMPT_LOG_LIMIT - 1):] + [entry]


class Batch:
    """The claimed ids of one dispatch and the outcomes recorded for them.

    Every outcome is written only where this dispatcher still holds the claim. "Sent" marks
    wait until `mark_batch` messages have gone and are then written in one UPDATE; any other
    outcome, a stop and the end of the batch write the waiting marks first.
    """

    def __init__(self, ids, token, now, worker, mark_batch, summary):
        self.ids, self.token, self.now, self.worker = ids, token, now, worker
        self.started = time.monotonic()
        self.mark_batch = mark_batch
        self.summary = summary
        self.waiting = []  # (attempt, reply) sent but not yet marked
        self.position = 0  # index in ids of the message being handled
        # The server refused us (sender, login): the first such reply and the messages it was
        # given for, which are given back untried.
        self.rejected: transports.SenderRejected | None = None
        self.rejected_ids = []

    def sent(self, attempt: Attempt, reply: str) -> None:
        """The server accepted the message."""
        self.summary.sent += 1
        self.waiting.append((attempt, reply))

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
                               .values(**FORGOTTEN)
                               .execution_options(synchronize_session=False))
        db.session.commit()
        self.waiting = []
        for message_id in replies.keys() - marked:
            log.warning("message %s: sent, but its claim was lost before it was marked; "
                        "it may be sent again", message_id)

    def finish(self, attempt: Attempt | None, message_id: int, outcome: str | None = None,
               reply: str | None = None, **values) -> None:
        """Record an outcome other than "sent" (with an attempt-log entry if it was one)."""
        self.flush()
        if attempt is not None:
            values.update(attempts=attempt.number, last_attempt_at=self.now, last_reply=reply,
                          attempt_log=_with_entry(attempt.history, self.now, outcome, reply))
            ended = values.get("status", MessageStatus.PENDING) != MessageStatus.PENDING
            if attempt.forget and ended:
                values.update(FORGOTTEN)
        result = db.session.execute(
            sa.update(Message)
            .where(Message.id == message_id, Message.claim_token == self.token)
            .values(claim_token=None, lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if result.rowcount != 1:
            log.warning("message %s: claim lost before its outcome was recorded", message_id)

    def failed(self, attempt: Attempt, outcome: str, reply: str) -> None:
        """Refused for good: the row fails now."""
        self.finish(attempt, attempt.message_id, outcome, reply, status=MessageStatus.FAILED)
        self.summary.failed += 1

    def retry(self, attempt: Attempt, outcome: str, reply: str,
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

    def record(self, finished) -> None:
        """Record the outcomes of sent messages: (Attempt, Outcome or SenderRejected) pairs.
        A sending thread's unexpected error is raised here once the others are recorded."""
        error = None
        for attempt, outcome in finished:
            if isinstance(outcome, transports.SenderRejected):
                self.rejected = self.rejected or outcome
                self.rejected_ids.append(attempt.message_id)
            elif isinstance(outcome, BaseException):
                # Its message may have reached the server: it keeps its lease.
                error = error or outcome
            elif outcome.status == transports.SENT:
                self.sent(attempt, outcome.reply)
            elif outcome.status == transports.PERMANENT:
                self.failed(attempt, outcome.status, outcome.reply)
                log.warning("message %s (%s): refused for good (%s)", attempt.message_id,
                            attempt.kind, transports.masked(outcome.reply))
            else:
                self.retry(attempt, outcome.status, outcome.reply)
        if len(self.waiting) >= self.mark_batch or error is not None:
            self.flush()
        if error is not None:
            raise error

    def give_back(self, position: int) -> None:
        """Release the claims from this position on and those the server refused us for,
        marks first."""
        self.flush()
        self.summary.released += release(self.rejected_ids + self.ids[position:], self.token)

    def abandon(self, in_flight=()) -> None:
        """After an unexpected error: keep what can be kept (the outcomes of the messages that
        were in flight on other connections included), without hiding that error."""
        try:
            db.session.rollback()
            for attempt, outcome in in_flight:
                # Another unexpected error: its message keeps its lease, like this one's.
                if not isinstance(outcome, BaseException):
                    self.record([(attempt, outcome)])
            self.flush()
            # The message being handled may have reached the server: it keeps its lease.
            self.summary.released += release(self.ids[self.position + 1:], self.token)
        except Exception:
            log.exception("dispatcher %s: could not record the outcomes of an interrupted batch; "
                          "%s sent messages will be sent again once their lease ends",
                          self.worker, len(self.waiting))

