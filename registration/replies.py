"""Acting on what arrives in the replies mailbox: an attendee's calendar answering their invite
(a decline releases the place, as their own cancel would) and a report that an address can't
be reached (nothing more is sent to it). Each email is acted on once, whatever re-reads it."""

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from extensions import db
from notifications import inbox
from notifications.mailbox import BOUNCE, DUPLICATE, LEFT, REPLY
from notifications.models import HandledMail, Message, MessageStatus
from registration import addresses, people, services
from registration.models import Registration, Rsvp

log = logging.getLogger(__name__)


def act_on(raw: bytes, now: datetime) -> str:
    """Act on one email from the mailbox, in a transaction of its own, committed; what it was."""
    message = inbox.parse(raw)
    key = inbox.message_key(message, raw)
    if db.session.scalar(sa.select(HandledMail.id).where(HandledMail.message_key == key)):
        return DUPLICATE
    outcome = _act(message, now)
    if outcome == LEFT:
        db.session.rollback()
        return LEFT
    try:
        with db.session.begin_nested():
            db.session.add(HandledMail(message_key=key, outcome=outcome, handled_at=now))
    except IntegrityError:
        # Another reader acted on the same email a moment ago: undo ours.
        db.session.rollback()
        return DUPLICATE
    db.session.commit()
    return outcome


def _act(message, now: datetime) -> str:
    answers = inbox.calendar_answers(message)
    if answers:
        acted = [answer for answer in answers if _answer(answer, now)]
        return REPLY if acted else LEFT
    report = inbox.bounce(message)
    if report is not None and report.failures:
        marked = [failure for failure in report.failures
                  if _bounced(failure, report.original_message_id, now)]
        return BOUNCE if marked else LEFT
    return LEFT


def _answer(answer: inbox.CalendarAnswer, now: datetime) -> bool:
    """Record one attendee's answer (a decline before the start also cancels); False when the
    invite is not one of ours or the answer comes from someone else."""
    registration = db.session.scalar(
        sa.select(Registration).where(Registration.ical_uid == answer.uid))
    if registration is None or addresses.email_key(answer.attendee) != registration.email_key:
        return False
    registration.rsvp = Rsvp(answer.partstat.lower())
    registration.rsvp_at = now
    if (registration.rsvp == Rsvp.DECLINED and registration.is_active
            and now < registration.event.starts_at):
        services.cancel(registration, now, by="calendar")
        log.info("registration %s cancelled: declined in the attendee's calendar",
                 registration.id)
    return True


def _bounced(failure: inbox.Failure, original_message_id: str | None, now: datetime) -> bool:
    """Mark the address a permanent failure names, if we sent to it (the report's own quote of
    the email must be one of ours, when it quotes one); False otherwise."""
    key = addresses.email_key(failure.recipient)
    sent = (sa.select(Message.id)
            .join(Registration, Message.registration_id == Registration.id)
            .where(Registration.email_key == key, Message.status == MessageStatus.SENT))
    if original_message_id:
        sent = sent.where(Message.message_id == original_message_id)
    if db.session.scalar(sent.limit(1)) is None:
        return False
    skipped = people.mark_undeliverable(key, f"{failure.status} {failure.diagnostic}", now)
    log.info("an address was marked undeliverable (%s); %s unsent emails skipped",
             failure.status, skipped)
    return True


def forget_handled(before: datetime) -> int:
    """Forget the emails acted on before then (each left the folder long ago); how many."""
    return db.session.execute(
        sa.delete(HandledMail).where(HandledMail.handled_at < before)
    ).rowcount
