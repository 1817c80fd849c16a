"""What email a change causes: the rows written in the same transaction as the change.

Which reminders a registration gets, and when each may go out, are pure functions of the
event's start, the configured offsets and the moment of planning.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from extensions import db
from notifications.models import (
    UNSUBSCRIBABLE_KINDS,
    UNVERSIONED_KINDS,
    IcalMethod,
    Message,
    MessageKind,
    MessageStatus,
    lease_is_free,
)
from registration.models import Registration, RegistrationStatus

# A repeat sign-up re-sends the confirmation, but never more than this often.
CONFIRMATIONS_PER_DAY = 3
# A link asked for is sent at once and may go out for this long (a relay's outage included);
# after that the person asks again.
MY_LINK_WINDOW = timedelta(hours=24)

_OFFSET = re.compile(r"(\d{1,5})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


@dataclass(frozen=True)
class Offset:
    """A reminder's distance before the start, as configured ("7d") and as a duration."""

    label: str
    before: timedelta


@dataclass(frozen=True)
class ReminderSlot:
    """One reminder of one session: due at `due_at`, sendable until `expires_at`."""

    offset: Offset
    due_at: datetime
    expires_at: datetime


def parse_offsets(raw: str) -> tuple[Offset, ...]:
    """'7d,1d,1h' as offsets, largest first; ValueError with words for a person otherwise."""
    offsets = {}
    for item in (part.strip() for part in raw.split(",")):
        match = _OFFSET.fullmatch(item.lower())
        if not match or int(match.group(1)) == 0:
            raise ValueError(
                f"must be a comma-separated list like 7d,1d,1h (d, h or m; above zero), "
                f"not {raw!r}"
            )
        before = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        offsets.setdefault(before, Offset(item.lower(), before))
    return tuple(sorted(offsets.values(), key=lambda offset: offset.before, reverse=True))


def reminder_slots(starts_at: datetime, offsets: tuple[Offset, ...],
                   after: datetime) -> list[ReminderSlot]:
    """The reminders due strictly after `after`, each with its window.

    A reminder may go out from its due time until the next one's; the last one until the start.
    So after an outage only the freshest is sent, and none ever after the start.
    """
    slots = []
    for position, offset in enumerate(offsets):
        due_at = starts_at - offset.before
        following = offsets[position + 1] if position + 1 < len(offsets) else None
        expires_at = starts_at - following.before if following else starts_at
        if due_at > after:
            slots.append(ReminderSlot(offset, due_at, expires_at))
    return slots


def _message_id() -> str:
    domain = current_app.config["MAIL_FROM"].rpartition("@")[2]
    return f"<{uuid.uuid4().hex}@{domain}>"


def _queue(registration: Registration, kind: str, now: datetime, *, method=None,
           due_at=None, expires_at=None, detail=None) -> Message:
    message = Message(
        registration=registration,
        event=registration.event,
        kind=kind,
        status=MessageStatus.PENDING,
        message_id=_message_id(),
        recipient=registration.email,
        ical_method=method,
        # Every message but a follow-up (or a link asked for) belongs to one version of the
        # invite: a newer version supersedes it (the dispatcher checks again before sending).
        ical_sequence=None if kind in UNVERSIONED_KINDS else registration.ical_sequence,
        created_at=now,
        due_at=due_at or now,
        expires_at=expires_at or registration.event.ends_at,
        detail=detail,
    )
    db.session.add(message)
    return message


UNSUBSCRIBED = "unsubscribed"
# Why what was still unsent for a session the organisers cancelled does not go.
EVENT_CANCELLED = "event cancelled"


def unsubscribe(registration: Registration, now: datetime) -> int:
    """No more reminders or follow-ups for the registration (its seat stays): the pending ones
    end skipped as "unsubscribed" and none are planned again. How many were skipped."""
    if registration.unsubscribed_at is None:
        registration.unsubscribed_at = now
    return skip_pending(registration, UNSUBSCRIBED, now, kinds=tuple(UNSUBSCRIBABLE_KINDS))


def skip_pending(registration: Registration, reason: str, now: datetime,
                 kinds: tuple[str, ...] | None = None) -> int:
    """End the registration's unsent messages as skipped with a reason; how many there were.

    A row a dispatcher holds right now is left to it: the dispatcher checks again before sending.
    """
    return skip_pending_where(Message.registration_id == registration.id, reason, kinds)


def skip_pending_to(email_key: str, reason: str) -> int:
    """End every unsent message to an address (all its registrations) as skipped, the link to
    the person's sessions included; how many there were."""
    theirs = sa.select(Registration.id).where(Registration.email_key == email_key)
    return skip_pending_where(Message.registration_id.in_(theirs), reason, kinds=None,
                              keep_my_link=False)


def skip_pending_where(whose, reason: str, kinds: tuple[str, ...] | None, *,
                       keep_my_link: bool = True) -> int:
    """End the unsent messages `whose` (a condition on Message) selects as skipped with a
    reason, of `kinds` or all but the person's link; how many there were."""
    query = (
        sa.update(Message)
        .where(
            whose,
            Message.status == MessageStatus.PENDING,
            lease_is_free(),
        )
        .values(status=MessageStatus.SKIPPED, skip_reason=reason, claim_token=None,
                lease_until=None)
        .execution_options(synchronize_session=False)
    )
    if kinds:
        query = query.where(Message.kind.in_(kinds))
    elif keep_my_link:
        # The link to all the person's sessions is theirs, whatever becomes of this one.
        query = query.where(Message.kind != MessageKind.MY_LINK)
    return db.session.execute(query).rowcount


def queue_signup(registration: Registration, now: datetime, *,
                 is_repeat: bool = True) -> Message | None:
    """Queue the confirmation (with invite) or the waiting-list notice for a sign-up.

    A repeat sign-up calls this again; past the daily allowance it queues nothing.
    """
    if is_repeat:
        recent = db.session.scalar(
            sa.select(sa.func.count(Message.id)).where(
                Message.registration_id == registration.id,
                Message.kind.in_((MessageKind.CONFIRMATION, MessageKind.WAITLISTED)),
                Message.created_at > now - timedelta(days=1),
            )
        )
        if recent >= CONFIRMATIONS_PER_DAY:
            return None
    if registration.status == RegistrationStatus.CONFIRMED:
        return _queue(registration, MessageKind.CONFIRMATION, now, method=IcalMethod.REQUEST)
    return _queue(registration, MessageKind.WAITLISTED, now)


def plan_new_registration(registration: Registration, now: datetime) -> None:
    """Everything a first sign-up causes: its confirmation or notice, and a seat's follow-up.
    (Its reminders are written when they fall due: notifications.reminders.)"""
    queue_signup(registration, now, is_repeat=False)
    if registration.status == RegistrationStatus.CONFIRMED:
        plan_follow_up(registration, now)


def queue_promotion(registration: Registration, now: datetime) -> Message:
    """A waiting-list person got a seat: the invite now; the reminders due from now on follow
    (notifications.reminders)."""
    message = _queue(registration, MessageKind.PROMOTION, now, method=IcalMethod.REQUEST)
    plan_follow_up(registration, now)
    return message


# Who ended a registration, as its cancellation email says: the attendee on a page, the
# organisers by cancelling the session, the attendee's calendar by declining the invite, or an
# organiser cancelling this one registration in the console (with a note for the attendee).
CANCELLED_BY = ("attendee", "organiser", "calendar", "console")


def queue_cancellation(registration: Registration, was_confirmed: bool, now: datetime, *,
                       by: str = "attendee", reason: str | None = None) -> Message:
    """The registration ended: a CANCEL invite for a seat holder, a plain notice otherwise.
    `reason`: the organiser's note to the attendee (by="console" only), quoted in the email.

    Nothing else still planned for it will be sent.
    """
    if by not in CANCELLED_BY:
        raise ValueError(f"unknown canceller {by!r}")
    skip_pending(registration, EVENT_CANCELLED if by == "organiser" else "cancelled", now)
    detail = {"by": by}
    if reason and by == "console":
        detail["reason"] = reason
    if was_confirmed:
        registration.ical_sequence += 1
        return _queue(registration, MessageKind.CANCELLATION, now, method=IcalMethod.CANCEL,
                      detail=detail)
    return _queue(registration, MessageKind.CANCELLATION, now, detail=detail)


def move_follow_ups(event_id: int, now: datetime, *, ends_at: datetime | None) -> int:
    """The session's end moved, or its recording link was removed (ends_at None): unsent
    follow-ups wait for the new end, or are skipped. Returns how many rows changed."""
    pending = (Message.event_id == event_id, Message.kind == MessageKind.FOLLOW_UP,
               Message.status == MessageStatus.PENDING)
    if ends_at is None:
        values = {"status": MessageStatus.SKIPPED, "skip_reason": "recording removed"}
    else:
        retention = timedelta(days=current_app.config["RETENTION_DAYS"])
        values = {"due_at": max(ends_at, now), "expires_at": ends_at + retention}
    return db.session.execute(
        sa.update(Message).where(*pending).values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount


def plan_follow_up(registration: Registration, now: datetime) -> Message | None:
    """One follow-up with the recording per seat holder, once the session has ended and has a
    recording; a second call (the link set again or changed) queues nothing."""
    event = registration.event
    if not event.recording_url or registration.status != RegistrationStatus.CONFIRMED:
        return None
    if registration.anonymised_at is not None:
        return None  # nobody left to send it to
    if registration.unsubscribed_at is not None:
        return None  # they asked for no more reminders or follow-ups
    if registration.id is not None and db.session.scalar(
        sa.select(Message.id).where(Message.registration_id == registration.id,
                                    Message.kind == MessageKind.FOLLOW_UP)
    ):
        return None
    retention = timedelta(days=current_app.config["RETENTION_DAYS"])
    return _queue(registration, MessageKind.FOLLOW_UP, now, due_at=max(event.ends_at, now),
                  expires_at=event.ends_at + retention)


def queue_my_link(registration: Registration, now: datetime, *,
                  signed_out: bool = False) -> Message:
    """The email with the link to all of a person's sessions, in the language (and to the
    address) of one of their registrations; it carries no invite. `signed_out`: it brings a
    new link after the person revoked the old ones."""
    return _queue(registration, MessageKind.MY_LINK, now, expires_at=now + MY_LINK_WINDOW,
                  detail={"signed_out": True} if signed_out else None)


def queue_announcement(registration: Registration, announcement_id: int, now: datetime, *,
                       due_at: datetime, expires_at: datetime) -> Message:
    """One recipient's row of an announcement: no invite, its words in the announcement."""
    return _queue(registration, MessageKind.ANNOUNCEMENT, now, due_at=due_at,
                  expires_at=expires_at, detail={"announcement_id": announcement_id})


def my_link_count(email_key: str, since: datetime) -> int:
    """How many link emails were queued for this address key since then, sent or not."""
    return db.session.scalar(
        sa.select(sa.func.count(Message.id))
        .join(Registration, Message.registration_id == Registration.id)
        .where(Registration.email_key == email_key, Message.kind == MessageKind.MY_LINK,
               Message.created_at > since)
    )


def forget_recipients(registration_ids: list[int], now: datetime) -> int:
    """Wipe the addresses and server replies kept on these registrations' messages.

    An unsent cancellation keeps its address until it goes (it must still reach the person);
    anything else still unsent is skipped, since there is no one left to send it to.
    """
    if not registration_ids:
        return 0
    ours = Message.registration_id.in_(registration_ids)
    db.session.execute(
        sa.update(Message)
        .where(ours, Message.status == MessageStatus.PENDING,
               Message.kind != MessageKind.CANCELLATION,
               lease_is_free())
        .values(status=MessageStatus.SKIPPED, skip_reason="personal data deleted", claim_token=None,
                lease_until=None)
        .execution_options(synchronize_session=False)
    )
    # An organiser's note in a cancellation may name the person: it goes with the address.
    for message in db.session.scalars(
            sa.select(Message).where(ours, Message.kind == MessageKind.CANCELLATION,
                                     Message.status != MessageStatus.PENDING)):
        if message.detail and "reason" in message.detail:
            message.detail = {key: value for key, value in message.detail.items()
                              if key != "reason"}
    return db.session.execute(
        sa.update(Message)
        .where(ours, sa.or_(Message.status != MessageStatus.PENDING,
                            Message.kind != MessageKind.CANCELLATION))
        .values(recipient="", last_reply=None, attempt_log=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def retry_failed(event_id: int, now: datetime) -> tuple[int, int]:
    """Make an event's failed messages due again, those still inside their window; returns
    (how many will be retried, how many stay failed because they would arrive too late)."""
    failed = (Message.event_id == event_id, Message.status == MessageStatus.FAILED)
    retried = db.session.execute(
        sa.update(Message)
        .where(*failed, Message.expires_at > now)
        # The attempts are kept: the back-off and the log continue where they were.
        .values(status=MessageStatus.PENDING, due_at=now, claim_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    too_late = db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(*failed))
    return retried, too_late
