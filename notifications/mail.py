"""MIME: each outbox row rendered from its templates into the bytes that go on the wire."""

import base64
import binascii
import functools
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import HeaderRegistry
from email.message import MIMEPart

from flask import render_template

from notifications import ical
from notifications.models import JOIN_LINK_KINDS, Message, MessageKind
from registration import addresses, times, tokens
from registration.models import RegistrationStatus


# The email package's modern API with the SMTP policies checks every header it is given (no CR
# or LF gets in) and folds and encodes each one. SMTPUTF8 writes headers as UTF-8 (RFC 6532):
# only for a message whose addresses need it, which only a server offering SMTPUTF8 may take.
class _HeaderClasses(HeaderRegistry):
    """The standard header classes, each composed once: the stock registry builds a new class
    for every header set or read, a sixth of the time to build a message."""

    def __init__(self):
        super().__init__()
        self.composed = {}

    def __getitem__(self, name):
        key = name.lower()
        if key not in self.composed:
            self.composed[key] = super().__getitem__(name)
        return self.composed[key]


# Headers that differ in every message; every other header text (the constants, the sender,
# a batch's Date, an event's Subject) repeats from message to message.
_PER_MESSAGE = frozenset({"to", "message-id"})


class _WirePolicy(policy.EmailPolicy):
    """The SMTP policy, folding each repeated header text once rather than once per message."""

    def fold_binary(self, name, value):
        """As EmailPolicy does; a repeated header's folded bytes are remembered."""
        if name.lower() in _PER_MESSAGE:
            return super().fold_binary(name, value)
        # What folding depends on. Not the policy object itself: the generator clones it for
        # every part it writes. (Header objects compare and hash as their text.)
        key = (self.utf8, self.linesep, self.max_line_length, name, value)
        folded = _FOLDED.get(key)
        if folded is None:
            if len(_FOLDED) >= _FOLDED_LIMIT:  # a long-running worker sees many Dates
                _FOLDED.clear()
            folded = _FOLDED[key] = super().fold_binary(name, value)
        return folded


_FOLDED: dict[tuple, bytes] = {}
_FOLDED_LIMIT = 1024


WIRE = _WirePolicy(linesep="\r\n", header_factory=_HeaderClasses())
WIRE_UTF8 = WIRE.clone(utf8=True)


@functools.lru_cache(maxsize=512)
def _fixed(name: str, value):
    """A header object made once per distinct text: the policy stores such an object as it
    is, without parsing the text again for every message (the largest cost of a build)."""
    return WIRE.header_factory(name, value)


# Every body is quoted-printable or base64, in which "=_" can't occur: a boundary starting
# with it can never collide with content, so one per nesting level serves every message.
_BOUNDARY = f"=_{uuid.uuid4().hex}"
_HEADERS = {
    "mixed": _fixed("Content-Type", f'multipart/mixed; boundary="{_BOUNDARY}m"'),
    "alternative": _fixed("Content-Type", f'multipart/alternative; boundary="{_BOUNDARY}a"'),
    "plain": _fixed("Content-Type", 'text/plain; charset="utf-8"'),
    "html": _fixed("Content-Type", 'text/html; charset="utf-8"'),
    "quoted-printable": _fixed("Content-Transfer-Encoding", "quoted-printable"),
    "base64": _fixed("Content-Transfer-Encoding", "base64"),
    # Inline and without Content-Disposition, or Outlook and Gmail show no invite; the
    # method parameter must match METHOD inside, or Exchange rejects the message.
    **{method: _fixed("Content-Type", f'text/calendar; method="{method}"; charset="UTF-8"')
       for method in ical.METHODS},
    "ics": _fixed("Content-Type", 'application/ics; name="invite.ics"'),
    "attachment": _fixed("Content-Disposition", 'attachment; filename="invite.ics"'),
    "MIME-Version": _fixed("MIME-Version", "1.0"),
    "Auto-Submitted": _fixed("Auto-Submitted", "auto-generated"),
    # Keep out-of-office replies from answering a notification.
    "X-Auto-Response-Suppress": _fixed("X-Auto-Response-Suppress", "All"),
}


def _part(content_type: str, encoding: str | None = None, payload=None) -> MIMEPart:
    part = MIMEPart(policy=WIRE)
    part["Content-Type"] = _HEADERS[content_type]
    if encoding is not None:
        part["Content-Transfer-Encoding"] = _HEADERS[encoding]
        part.set_payload(payload)
    return part


def _text_part(subtype: str, text: str) -> MIMEPart:
    # Quoted-printable keeps the text readable in the raw message and every line short.
    body = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    return _part(subtype, "quoted-printable", body)


def _bytes_part(content_type: str, data: bytes) -> MIMEPart:
    # Base64 keeps the calendar's CRLFs and folding byte for byte.
    return _part(content_type, "base64", base64.encodebytes(data).decode("ascii"))


def join_link(message: Message) -> str | None:
    """The join link, if this message may carry it: the one rule for emails and invites."""
    registration = message.registration
    if message.kind not in JOIN_LINK_KINDS or registration.status != RegistrationStatus.CONFIRMED:
        return None
    if message.kind == MessageKind.UPDATE and message.ical_method is None:
        return None
    return message.event.join_url

SUBJECTS = {
    "en": {
        "confirmation": "Confirmed: {title}",
        "waitlisted": "Waiting list: {title}",
        "promotion": "A seat is yours: {title}",
        "cancellation": "Cancelled: {title}",
        "reminder": "Reminder: {title}, {soon}",
        "update": "Changed: {title}",
        "follow_up": "Recording: {title}",
    },
    "ja": {
        "confirmation": "登録完了: {title}",
        "waitlisted": "キャンセル待ち: {title}",
        "promotion": "お席が確保されました: {title}",
        "cancellation": "キャンセル: {title}",
        "reminder": "リマインダー: {title}（{soon}）",
        "update": "変更のお知らせ: {title}",
        "follow_up": "録画のご案内: {title}",
    },
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MESSAGE_ID = re.compile(r"<[^\s<>@]+@[A-Za-z0-9.-]+>")


class UnsendableMessage(ValueError):
    """The row can't become a valid email (a bad address or header); sending it again won't help."""


@dataclass(frozen=True)
class OutgoingMail:
    """Everything a transport needs, as plain values: no database object survives into sending."""

    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    # An address in it has a local part beyond ASCII: the server must offer SMTPUTF8.
    smtputf8: bool = False


def _header(value: str) -> str:
    # The policy refuses CR and LF itself; this refuses NUL too, with words for the console.
    if any(c in value for c in "\r\n\0"):
        raise UnsendableMessage(f"header value contains a line break or NUL: {value!r}")
    return value


def display_name(name: str) -> str:
    """A person's name made safe for a header: control characters become spaces."""
    return " ".join(_CONTROL.sub(" ", name).split())


def _address(text: str) -> addresses.Address:
    """One plain address (no name, list or group), as email-validator reads it."""
    try:
        return addresses.parse(text, test_environment=True)
    except addresses.EmailNotValidError as exc:
        raise UnsendableMessage(f"not a single valid address: {text!r} ({exc})") from None


# The sender and organiser addresses come from the settings: read once per process.
_config_address = functools.lru_cache(maxsize=8)(_address)
# The same event, zone and language give the same words; a batch has many of each.
_format_when = functools.lru_cache(maxsize=1024)(times.format_when)


def manage_url(registration, base_url: str) -> str | None:
    """The registration's manage link; none once its data was deleted (the link is void)."""
    if registration.anonymised_at is not None:
        return None
    return f"{base_url}/r/{tokens.manage_token(registration)}"


# How far ahead a session is, in words: "in 7 days" / "7日後".
_UNIT_WORDS = {
    "en": {"d": ("in {n} day", "in {n} days"), "h": ("in {n} hour", "in {n} hours"),
           "m": ("in {n} minute", "in {n} minutes")},
    "ja": {"d": ("{n}日後", "{n}日後"), "h": ("{n}時間後", "{n}時間後"),
           "m": ("{n}分後", "{n}分後")},
}
_CHANGE_WORDS = {
    "ja": {"time": "日時", "title": "タイトル", "description": "内容", "join link": "参加リンク",
           "location": "場所"},
}


def time_left_words(left: timedelta, language: str) -> str:
    """How far off the start is, in words, measured when the email is built: a reminder sent
    late in its window says what is true then ("in 5 hours", not "in 1 day")."""
    minutes = max(round(left.total_seconds() / 60), 1)
    if minutes < 90:
        count, unit = (1, "h") if 50 <= minutes <= 70 else (minutes, "m")
    elif minutes < 22 * 60:
        count, unit = round(minutes / 60), "h"
    else:
        count, unit = round(minutes / (24 * 60)), "d"
    one, many = _UNIT_WORDS[language][unit]
    return (one if count == 1 else many).format(n=count)


def _changed_words(changed: list[str], language: str) -> str:
    words = [_CHANGE_WORDS.get(language, {}).get(item, item) for item in changed]
    if language == "ja":
        return "・".join(words)
    return " and ".join(words) if len(words) <= 2 else ", ".join(words[:-1]) + " and " + words[-1]


def render(message: Message, config, now: datetime) -> tuple[str, str, str]:
    """The subject, plain text and HTML of a message, in its recipient's language and zone."""
    registration, event = message.registration, message.event
    language = registration.language if registration.language in SUBJECTS else "en"
    detail = message.detail or {}
    old_when = None
    if "old_starts_at" in detail:
        old_when = times.format_when(
            datetime.fromisoformat(detail["old_starts_at"]),
            datetime.fromisoformat(detail["old_ends_at"]),
            registration.timezone, language,
        )
    is_reminder = message.kind == MessageKind.REMINDER
    soon = time_left_words(event.starts_at - now, language) if is_reminder else ""
    context = {
        "kind": message.kind,
        "lang": language,
        "name": display_name(registration.name),
        "event": event,
        "when": _format_when(
            event.starts_at, event.ends_at, registration.timezone, registration.language
        ),
        "manage_url": manage_url(registration, config["BASE_URL"]),
        "join_url": join_link(message),
        "event_url": f"{config['BASE_URL']}/events/{event.slug}",
        "has_invite": message.ical_method is not None,
        "organiser_email": config["ORGANISER_EMAIL"],
        "registration_status": registration.status,
        # From the platform's attendee report: True, False, or None before one is uploaded.
        "attended": registration.attended,
        "soon": soon,
        "is_last": bool(detail.get("is_last")),
        "old_when": old_when,
        "time_changed": "time" in detail.get("changed", ()),
        "changed_words": _changed_words(detail.get("changed", ["details"]), language),
    }
    text = render_template(f"emails/{message.kind}.txt", **context)
    html = render_template(f"emails/{message.kind}.html", **context)
    subject = SUBJECTS[language][message.kind].format(title=display_name(event.title),
                                                      soon=soon)
    return subject, text, html


@functools.lru_cache(maxsize=8)
def _from(name: str, address: addresses.Address, utf8: bool):
    """The From header (from the settings), made once per process."""
    return _fixed("From", str(_mailbox(name, address, utf8)))


@functools.lru_cache(maxsize=8)
def _reply_to(address: addresses.Address, utf8: bool):
    return _fixed("Reply-To", address.display if utf8 else address.wire)


def _mailbox(name: str, address: addresses.Address, utf8: bool) -> HeaderAddress:
    # A message that goes with SMTPUTF8 may show the domain in Unicode, as its owner wrote it.
    # Given in parts: email-validator has checked the address, and the header parser would
    # refuse a local part beyond ASCII, which RFC 6532 allows.
    local, _, domain = (address.display if utf8 else address.wire).rpartition("@")
    return HeaderAddress(display_name=display_name(name), username=local, domain=domain)


def build_message(message: Message, config, now: datetime) -> OutgoingMail:
    """The message row as MIME bytes ready for SMTP, with its envelope."""
    registration, event = message.registration, message.event
    recipient = _address(message.recipient)
    sender = _config_address(config["MAIL_FROM"])
    organiser = _config_address(config["ORGANISER_EMAIL"])
    message_id = _header(message.message_id)
    if not _MESSAGE_ID.fullmatch(message_id):
        raise UnsendableMessage(f"malformed Message-ID {message_id!r}")
    utf8 = recipient.needs_smtputf8 or sender.needs_smtputf8 or organiser.needs_smtputf8
    wire = WIRE_UTF8 if utf8 else WIRE

    subject, text, html = render(message, config, now)
    body = _part("alternative")
    body.attach(_text_part("plain", text))
    body.attach(_text_part("html", html))
    if message.ical_method is None:
        root = body
    else:
        invite = ical.invite(
            event,
            registration,
            message.ical_method,
            message.ical_sequence,
            organiser.wire,
            now,
            organiser_name=config["MAIL_FROM_NAME"],
            join_url=join_link(message),
            # The row keeps the address even when the registration's data is already deleted.
            attendee_email=recipient.wire,
        )
        body.attach(_bytes_part(message.ical_method, invite))
        attachment = _bytes_part("ics", invite)
        attachment["Content-Disposition"] = _HEADERS["attachment"]
        root = _part("mixed")
        root.attach(body)
        root.attach(attachment)

    try:
        root["MIME-Version"] = _HEADERS["MIME-Version"]
        root["From"] = _from(config["MAIL_FROM_NAME"], sender, utf8)
        root["To"] = _mailbox(registration.name, recipient, utf8)
        root["Reply-To"] = _reply_to(organiser, utf8)
        root["Subject"] = _fixed("Subject", _header(subject))
        root["Date"] = _fixed("Date", now)
        root["Message-ID"] = message_id
        root["Auto-Submitted"] = _HEADERS["Auto-Submitted"]
        root["X-Auto-Response-Suppress"] = _HEADERS["X-Auto-Response-Suppress"]
        data = root.as_bytes(policy=wire)
    except ValueError as exc:  # a header the policy refuses (a line break, a bad address)
        raise UnsendableMessage(f"not a valid header: {exc}") from None
    return OutgoingMail(message_id, sender.wire, (recipient.wire,), data, utf8)
