"""What an email in the replies mailbox says, read without acting on it: a calendar's answer
to an invite (an iTIP REPLY, RFC 5546), a report that a message could not be delivered (a DSN,
RFC 3464), or neither (mail for people)."""

import hashlib
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from icalendar import Calendar

# The answers an attendee's calendar may send that we act on or record.
PARTSTATS = frozenset({"ACCEPTED", "TENTATIVE", "DECLINED"})
# An enhanced status code (RFC 3463): class.subject.detail.
_STATUS = re.compile(r"([245])\.\d{1,3}\.\d{1,3}")
# The longest Message-ID kept as a key (the column's width).
_KEY_LENGTH = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class CalendarAnswer:
    """One attendee's answer to one invite: which invite (UID), who answered, and how."""

    uid: str
    attendee: str
    partstat: str


@dataclass(frozen=True)
class Failure:
    """One recipient a delivery report says could not be reached for good (a 5.x.x status)."""

    recipient: str
    status: str
    diagnostic: str


@dataclass(frozen=True)
class Bounce:
    """A delivery report: the permanent failures in it, and the Message-ID of the email it
    reports on when the report quotes it."""

    failures: tuple[Failure, ...]
    original_message_id: str | None


def parse(raw: bytes) -> EmailMessage:
    """The email as a message object (the standard library's modern API)."""
    return message_from_bytes(raw, policy=policy.default)


def message_key(message: EmailMessage, raw: bytes) -> str:
    """What identifies the email across reads: its Message-ID, or a digest of its bytes when it
    has none (or one too long to keep)."""
    message_id = _header(message, "Message-ID")
    if message_id and len(message_id) <= _KEY_LENGTH:
        return message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _header(message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header the parser can't make sense of
        return ""
    # Folded lines and control characters read as single spaces.
    return " ".join(_CONTROL.sub(" ", str(value)).split()) if value is not None else ""


def calendar_answers(message: EmailMessage) -> list[CalendarAnswer]:
    """The answers carried by the email's text/calendar parts (inline or attached) whose
    calendar says METHOD:REPLY; none for any other email."""
    answers = []
    for part in message.walk():
        if not _is_calendar(part):
            continue
        try:
            data = part.get_payload(decode=True)
            calendar = Calendar.from_ical(data) if data else None
        except Exception:  # noqa: BLE001 - any sender's bytes: whatever the parser trips on
            continue  # is not a calendar answer, and is left for people
        if calendar is None or str(calendar.get("METHOD", "")).upper() != "REPLY":
            continue
        for vevent in calendar.walk("VEVENT"):
            uid = str(vevent.get("UID", "")).strip()
            attendees = vevent.get("ATTENDEE")
            # A REPLY names exactly one attendee, the one answering (RFC 5546 3.2.3).
            if not uid or attendees is None or isinstance(attendees, list):
                continue
            partstat = str(attendees.params.get("PARTSTAT", "")).upper()
            address = _mailto(str(attendees))
            if address and partstat in PARTSTATS:
                answers.append(CalendarAnswer(uid, address, partstat))
    return answers


def _is_calendar(part) -> bool:
    if part.is_multipart():
        return False
    if part.get_content_type() == "text/calendar":
        return True
    # Some clients attach the answer as a file of another type (application/ics, octet-stream).
    filename = (part.get_filename() or "").lower()
    return filename.endswith(".ics")


def _mailto(value: str) -> str:
    scheme, _, address = value.strip().partition(":")
    return address.strip() if scheme.lower() == "mailto" else ""


def bounce(message: EmailMessage) -> Bounce | None:
    """The permanent failures a delivery status notification reports (Action: failed with a
    5.x.x status); None for any email that is not such a report. A delay (4.x.x) or a success
    is a report with no failures."""
    if (message.get_content_type() != "multipart/report"
            or (message.get_param("report-type") or "").lower() != "delivery-status"):
        return None
    failures, original = [], None
    for part in message.iter_parts():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            failures.extend(_failures(part))
        elif content_type in {"message/rfc822", "text/rfc822-headers"}:
            original = _original_message_id(part) or original
    return Bounce(tuple(failures), original)


def _failures(part) -> list[Failure]:
    # The parser reads message/delivery-status as header blocks: the first is about the
    # message, each later one about one recipient (RFC 3464 2.1).
    blocks = part.get_payload()
    failures = []
    for block in blocks[1:] if isinstance(blocks, list) else ():
        action = _header(block, "Action").lower()
        match = _STATUS.match(_header(block, "Status"))
        if action != "failed" or not match or match.group(1) != "5":
            continue
        recipient = _address_field(_header(block, "Final-Recipient")
                                   or _header(block, "Original-Recipient"))
        if recipient:
            failures.append(Failure(recipient, match.group(0),
                                    _header(block, "Diagnostic-Code") or match.group(0)))
    return failures


def _address_field(value: str) -> str:
    # "rfc822; someone@example.org" (the address type, then the address).
    kind, _, address = value.partition(";")
    if not address:
        return ""
    return address.strip().strip("<>") if kind.strip().lower() in {"rfc822", "utf-8"} else ""


def _original_message_id(part) -> str | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return _header(inner, "Message-ID") or None if hasattr(inner, "get") else None
    # text/rfc822-headers: the original's header block as text.
    headers = parse(part.get_payload(decode=True) or b"")
    return _header(headers, "Message-ID") or None
