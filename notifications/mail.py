"""MIME: each outbox row rendered from its templates into the bytes that go on the wire."""

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address as HeaderAddress

from flask import render_template
from flask_babel import force_locale, get_translations, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from markupsafe import Markup

from extensions import db
from notifications import dkim, ical, wire
from notifications.models import (
    JOIN_LINK_KINDS,
    UNSUBSCRIBABLE_KINDS,
    Announcement,
    Message,
    MessageKind,
)
from notifications.text import to_html
from registration import addresses, times, tokens
from registration import unsubscribe as unsubscribing
from registration.models import Language, RegistrationStatus


def join_link(message: Message) -> str | None:
    """The join link, if this message may carry it: the one rule for emails and invites."""
    registration = message.registration
    if message.kind not in JOIN_LINK_KINDS or registration.status != RegistrationStatus.CONFIRMED:
        return None
    if message.kind == MessageKind.UPDATE and message.ical_method is None:
        return None
    return message.event.join_url


# Each kind's subject, translated as the message is built, in its reader's language.
SUBJECTS = {
    MessageKind.CONFIRMATION: _l("Confirmed: %(title)s"),
    MessageKind.WAITLISTED: _l("Waiting list: %(title)s"),
    MessageKind.PROMOTION: _l("A seat is yours: %(title)s"),
    MessageKind.CANCELLATION: _l("Cancelled: %(title)s"),
    # TRANSLATORS: %(soon)s says how far off the session is: "in 7 days", "in 1 hour".
    MessageKind.REMINDER: _l("Reminder: %(title)s, %(soon)s"),
    MessageKind.UPDATE: _l("Changed: %(title)s"),
    MessageKind.FOLLOW_UP: _l("Recording: %(title)s"),
    # TRANSLATORS: %(programme)s is the programme's name, as in the footer of every email.
    MessageKind.MY_LINK: _l("Your sessions at %(programme)s: your link"),
    # An announcement's subject is the organisers' own, in the reader's language: see _render.
}
# When the organisers call the session off, the cancellation says so in its subject: in
# Japanese a session called off (中止) is another word than a place given up (キャンセル).
SESSION_CANCELLED_SUBJECT = _l("Session cancelled: %(title)s")

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


def me_url(registration, base_url: str) -> str | None:
    """The link to all the person's sessions; none for a row without its person (written
    before people had one, or whose data was deleted): the email goes without it."""
    person = registration.person
    if registration.anonymised_at is not None or person is None:
        return None
    return f"{base_url}/me/{tokens.me_token(person)}"


# What changed, as an update email names it: "The time and title of “…” changed."
CHANGE_WORDS = {
    # TRANSLATORS: this and the next few name what changed in a session, for "The %(changes)s
    # of “%(title)s” changed."
    "time": _l("time"),
    "title": _l("title"),
    "description": _l("description"),
    "join link": _l("join link"),
    "location": _l("location"),
    "details": _l("details"),
}


def time_left_words(left: timedelta) -> str:
    """How far off the start is, in words of the current language, measured when the email is
    built: a reminder sent late in its window says what is true then ("in 5 hours", not "in 1
    day")."""
    minutes = max(round(left.total_seconds() / 60), 1)
    if minutes < 90:
        if 50 <= minutes <= 70:
            return ngettext("in %(num)d hour", "in %(num)d hours", 1)
        return ngettext("in %(num)d minute", "in %(num)d minutes", minutes)
    if minutes < 22 * 60:
        return ngettext("in %(num)d hour", "in %(num)d hours", round(minutes / 60))
    return ngettext("in %(num)d day", "in %(num)d days", round(minutes / (24 * 60)))


def changed_words(changed: list[str]) -> str:
    """What changed, as a list in words of the current language: "time, title and location"."""
    words = [str(CHANGE_WORDS.get(item, item)) for item in changed]
    if len(words) <= 1:
        return "".join(words)
    # TRANSLATORS: joins the items of a list but the last: "time, title" (then " and location").
    head = _(", ").join(words[:-1])
    # TRANSLATORS: the end of a list: "time, title and location".
    return _("%(items)s and %(last)s", items=head, last=words[-1])


LANGUAGES = frozenset(Language)


def announcement_of(message: Message) -> Announcement:
    """The announcement an outbox row of that kind carries the words of."""
    announcement = db.session.get(Announcement, (message.detail or {}).get("announcement_id"))
    if announcement is None:
        raise UnsendableMessage(f"message {message.id}: its announcement is gone")
    return announcement


def render(message: Message, config, now: datetime,
           announcement: Announcement | None = None) -> tuple[str, str, str]:
    """The subject, plain text and HTML of a message, in its recipient's language and zone.

    An announcement's words are those of `announcement` when given (a preview, before any row
    exists), else of the one the row points to."""
    language = message.registration.language
    language = language if language in LANGUAGES else Language.EN
    if message.kind == MessageKind.ANNOUNCEMENT:
        announcement = announcement or announcement_of(message)
        # The whole email in the language of the words it carries: English where the
        # organisers wrote no Japanese, rather than a Japanese frame around English text.
        language = announcement.language_for(language)
    # The dispatcher has no request to take a language from: every message, words and
    # subject, is rendered in its own reader's language, whatever the one before was.
    with force_locale(language):
        return _render(message, config, now, language, announcement)


def _gettext_from(translations):
    """The templates' `gettext` (behind `_()` and `{% trans %}`) reading one catalogue, found
    once per email instead of once per string. Otherwise as the one Flask-Babel installs, in
    Jinja's newstyle: the text always %-formatted with the given values, escaped in HTML."""

    @pass_context
    def gettext(context, string, **variables):
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return gettext


def _render(message: Message, config, now: datetime, language: str,
            announcement: Announcement | None) -> tuple[str, str, str]:
    registration, event = message.registration, message.event
    detail = message.detail or {}
    # The zone is the reader's, given explicitly: force_locale changes the language only.
    zone = registration.timezone
    old_when = None
    if "old_starts_at" in detail:
        old_when = _format_when(datetime.fromisoformat(detail["old_starts_at"]),
                                datetime.fromisoformat(detail["old_ends_at"]), zone, language)
    is_reminder = message.kind == MessageKind.REMINDER
    soon = time_left_words(event.starts_at - now) if is_reminder else ""
    title = display_name(event.title)
    context = {
        "kind": message.kind,
        "lang": language,
        "name": display_name(registration.name),
        "event": event,
        "title": title,
        # The session's own words (title, description) carry their language where it is not
        # the reader's, so that a screen reader says them right.
        "event_lang": event.language if event.language != language else None,
        "when": _format_when(event.starts_at, event.ends_at, zone, language),
        "manage_url": manage_url(registration, config["BASE_URL"]),
        "me_url": me_url(registration, config["BASE_URL"]),
        "join_url": join_link(message),
        "event_url": f"{config['BASE_URL']}/events/{event.slug}",
        "has_invite": message.ical_method is not None,
        # An invite asks for no reply while none is read: declining it in a calendar frees
        # nothing, and the email says so.
        "decline_frees_nothing": (message.ical_method == ical.REQUEST
                                  and not ical.replies_are_read(config)),
        "sender": config["MAIL_FROM_NAME"],
        "programme": config["PROGRAMME_NAME"],
        "organiser_email": config["ORGANISER_EMAIL"],
        "registration_status": registration.status,
        # From the platform's attendee report: True, False, or None before one is uploaded.
        "attended": registration.attended,
        "soon": soon,
        "is_last": bool(detail.get("is_last")),
        "signed_out": bool(detail.get("signed_out")),
        "declined_in_calendar": detail.get("by") == "calendar",
        "cancelled_in_console": detail.get("by") == "console",
        # The organiser's note, plain text: autoescaped in the HTML part like any other value.
        "organiser_note": detail.get("reason") or "",
        "old_when": old_when,
        "time_changed": "time" in detail.get("changed", ()),
        "changed_words": changed_words(detail.get("changed", ["details"])),
        # Rendered under force_locale(language): the catalogue is that language's.
        "gettext": _gettext_from(get_translations()),
    }
    if announcement is not None:
        subject, words = announcement.words(language)
        context["announcement_text"] = words
        context["announcement_html"] = to_html(words)
    plain = render_template(f"emails/{message.kind}.txt", **context)
    html = render_template(f"emails/{message.kind}.html", **context)
    if announcement is not None:
        return subject, plain, html
    called_off = message.kind == MessageKind.CANCELLATION and event.is_cancelled
    subject = str(SESSION_CANCELLED_SUBJECT if called_off else SUBJECTS[message.kind])
    subject %= {"title": title, "soon": soon, "programme": config["PROGRAMME_NAME"]}
    return subject, plain, html


@functools.lru_cache(maxsize=8)
def _from(name: str, address: addresses.Address, utf8: bool):
    """The From header (from the settings), made once per process."""
    return wire.fixed("From", str(_mailbox(name, address, utf8)))


@functools.lru_cache(maxsize=8)
def _reply_to(address: addresses.Address, utf8: bool):
    return wire.fixed("Reply-To", address.display if utf8 else address.wire)


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
    invite_organiser = _config_address(ical.organiser_address(config))
    message_id = _header(message.message_id)
    if not _MESSAGE_ID.fullmatch(message_id):
        raise UnsendableMessage(f"malformed Message-ID {message_id!r}")
    utf8 = (recipient.needs_smtputf8 or sender.needs_smtputf8 or organiser.needs_smtputf8
            or invite_organiser.needs_smtputf8)
    on_the_wire = wire.WIRE_UTF8 if utf8 else wire.WIRE

    subject, text, html = render(message, config, now)
    body = wire.part("alternative")
    body.attach(wire.text_part("plain", text))
    body.attach(wire.text_part("html", html))
    if message.ical_method is None:
        root = body
    else:
        invite = ical.invite(
            event,
            registration,
            message.ical_method,
            message.ical_sequence,
            invite_organiser.wire,
            now,
            organiser_name=config["MAIL_FROM_NAME"],
            join_url=join_link(message),
            # The row keeps the address even when the registration's data is already deleted.
            attendee_email=recipient.wire,
            rsvp=ical.replies_are_read(config),
        )
        body.attach(wire.bytes_part(message.ical_method, invite))
        attachment = wire.bytes_part("ics", invite)
        attachment["Content-Disposition"] = wire.HEADERS["attachment"]
        root = wire.part("mixed")
        root.attach(body)
        root.attach(attachment)

    try:
        root["MIME-Version"] = wire.HEADERS["MIME-Version"]
        root["From"] = _from(config["MAIL_FROM_NAME"], sender, utf8)
        root["To"] = _mailbox(registration.name, recipient, utf8)
        root["Reply-To"] = _reply_to(organiser, utf8)
        root["Subject"] = wire.fixed("Subject", _header(subject))
        root["Date"] = wire.fixed("Date", now)
        root["Message-ID"] = message_id
        root["Auto-Submitted"] = wire.HEADERS["Auto-Submitted"]
        root["X-Auto-Response-Suppress"] = wire.HEADERS["X-Auto-Response-Suppress"]
        unsubscribe = (unsubscribing.url(registration, config["BASE_URL"])
                       if message.kind in UNSUBSCRIBABLE_KINDS else None)
        if unsubscribe:  # only reminders and follow-ups: every other email must reach them
            root["List-Unsubscribe"] = _header(
                f"<{unsubscribe}>, <mailto:{sender.wire}?subject=unsubscribe>")
            root["List-Unsubscribe-Post"] = wire.HEADERS["List-Unsubscribe-Post"]
        data = root.as_bytes(policy=on_the_wire)
    except ValueError as exc:  # a header the policy refuses (a line break, a bad address)
        raise UnsendableMessage(f"not a valid header: {exc}") from None
    # Signed last, over the bytes that go on the wire.
    data = dkim.sign_for(data, config)
    envelope = _config_address(config["SMTP_ENVELOPE_FROM"])
    return OutgoingMail(message_id, envelope.wire, (recipient.wire,), data,
                        utf8 or envelope.needs_smtputf8)
