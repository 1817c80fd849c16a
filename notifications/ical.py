"""iCalendar: the invite sent to one registrant (RFC 5546) and the public calendar downloads."""

import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from flask_babel import force_locale, pgettext
from flask_babel import gettext as _
from icalendar import Calendar, vCalAddress, vDuration
from icalendar import Event as VEvent

from registration.models import Event, Registration

PRODID = "-//Forum Sign-up//Forum Sign-up//EN"
REQUEST, CANCEL = "REQUEST", "CANCEL"
METHODS = (REQUEST, CANCEL)


def replies_are_read(config) -> bool:
    """Whether attendees' calendar replies (accept, decline) are read, from the mailbox
    IMAP_HOST names: only then does a REQUEST ask for one (RSVP=TRUE)."""
    return bool(config.get("IMAP_HOST"))


def organiser_address(config) -> str:
    """The invites' ORGANIZER: the mailbox that is read (REPLIES_EMAIL) when there is one, as
    calendar replies go to the organiser; else ORGANISER_EMAIL, who also gets human replies."""
    return config.get("REPLIES_EMAIL") or config["ORGANISER_EMAIL"]

# Parameter values can't hold control characters; a double quote would need RFC 6868's ^'
# escape, which Outlook shows literally. A display name loses nothing that matters by this.
_NOT_IN_PARAM = re.compile(r'[\x00-\x1f\x7f"]+')


def _display_name(name: str) -> str:
    return " ".join(_NOT_IN_PARAM.sub(" ", name).split())


def _utc(moment: datetime) -> datetime:
    # An aware UTC datetime is written with Z; a named zone would need a VTIMEZONE, and the one
    # icalendar writes (RDATE only) is misread by Outlook by an hour.
    return moment.astimezone(UTC)


def _calendar(method: str | None = None) -> Calendar:
    # Plain Calendar(), not Calendar.new(): an iTIP message must not carry a calendar-level UID.
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method is not None:
        calendar.add("method", method)
    return calendar


def invite(
    event: Event,
    registration: Registration,
    method: str,
    sequence: int,
    organiser_email: str,
    now: datetime,
    *,
    organiser_name: str = "Forum organisers",
    join_url: str | None = None,
    attendee_email: str | None = None,
    rsvp: bool = False,
) -> bytes:
    """The invite (METHOD REQUEST or CANCEL) for one registration, as iCalendar bytes.

    The caller decides whether it carries the join link (notifications.mail.join_link). No
    manage link goes in: calendars are often shared, and that link lets its holder cancel.
    """
    if method not in METHODS:
        raise ValueError(f"unknown iTIP method {method!r}")
    return _invite(event, registration, method, sequence, organiser_email, now,
                   organiser_name=organiser_name, join_url=join_url,
                   attendee_email=attendee_email, in_file=method, rsvp=rsvp)


def own_invite(registration: Registration, organiser_email: str, now: datetime, *,
               organiser_name: str = "Forum organisers") -> bytes:
    """A seat holder's own copy of their invite, to download: the VEVENT their emailed REQUEST
    carries (same UID, the current SEQUENCE, the join link) in a calendar without METHOD, so
    that importing it and every later emailed update land on one calendar entry."""
    return _invite(registration.event, registration, "REQUEST", registration.ical_sequence,
                   organiser_email, now, organiser_name=organiser_name,
                   join_url=registration.event.join_url, attendee_email=None, in_file=None,
                   rsvp=False)


def _invite(event, registration, method, sequence, organiser_email, now, *, organiser_name,
            join_url, attendee_email, in_file, rsvp) -> bytes:
    # `method` decides the event's content; `in_file` is the METHOD line (None: a plain file).
    is_request = method == "REQUEST"
    join_url = join_url if is_request else None

    lines = [event.description.strip()] if event.description else []
    # The invite's own words are in its reader's language, as the email around it is (and
    # the same in the downloaded copy, which a manage page in another language offers).
    with force_locale(registration.language):
        if join_url:
            lines.append(_("Join: %(url)s", url=join_url))
        if not is_request:
            lines.append(_("The organisers cancelled this session.") if event.is_cancelled
                         else _("This registration is cancelled."))

    email = attendee_email or registration.email
    shared = _shared(
        method, sequence, _utc(now), _utc(event.starts_at), _utc(event.ends_at), event.title,
        "\n\n".join(lines), join_url or event.location or None, join_url, organiser_email,
        _display_name(organiser_name), in_file,
    )
    # A CANCEL asks nothing of the attendee: no RSVP, no PARTSTAT (RFC 5546 3.2.5). A REQUEST
    # asks for a reply only when replies are read (replies_are_read).
    answer = {"rsvp": rsvp, "partstat": "NEEDS-ACTION"} if is_request else {}
    person = VEvent()
    person.add("uid", registration.ical_uid)
    person.add("attendee", vCalAddress.new(
        email, cn=_display_name(registration.name) or email, role="REQ-PARTICIPANT", **answer))
    own = {name: person.content_line(name, person[name]).to_ical() for name in _PERSONAL}
    return b"\r\n".join(own.get(piece, piece) for piece in shared if piece) + b"\r\n"


# UID and ATTENDEE differ per person; everything else is the same for every attendee of a
# session in one batch (DTSTAMP is the batch's `now`).
_PERSONAL = ("UID", "ATTENDEE")


@functools.lru_cache(maxsize=64)
def _shared(method, sequence, stamp, start, end, title, description, location, url,
            organiser_email, organiser_name, in_file) -> tuple:
    """The invite's calendar as icalendar writes it, folded once: runs of content lines (bytes)
    with the name of each personal property ("UID", "ATTENDEE") where its line goes."""
    vevent = VEvent.new(
        uid="-",
        sequence=sequence,
        stamp=stamp,
        start=start,
        end=end,
        summary=title,
        description=description,
        location=location,
        url=url,
        status="CONFIRMED" if method == "REQUEST" else "CANCELLED",
        organizer=vCalAddress.new(organiser_email, cn=organiser_name),
    )
    vevent.add("attendee", vCalAddress.new("-@example.org"))
    calendar = _calendar(in_file)
    calendar.add_component(vevent)
    # content_lines() writes one line per property_items() entry, in the same order.
    names = [name for name, _value in calendar.property_items()]
    lines = [line.to_ical() for line in calendar.content_lines() if line]
    pieces, run = [], []
    for name, line in zip(names, lines, strict=True):
        if name in _PERSONAL:
            pieces += [b"\r\n".join(run), name]
            run = []
        else:
            run.append(line)
    return (*pieces, b"\r\n".join(run))


# How often a subscribed calendar app should fetch the programme again (RFC 7986's
# REFRESH-INTERVAL, and X-PUBLISHED-TTL for the apps that only know that one).
REFRESH = timedelta(hours=6)


def event_uid(event: Event) -> str:
    """The UID of an event in the public calendars: its stored random public UID (never the
    row id), the same for the event's life and on no other installation."""
    return f"{event.public_uid}@forum-signup"


def _title(event: Event) -> str:
    if not event.is_cancelled:
        return event.title
    # TRANSLATORS: a session the organisers called off, in the public calendars.
    return pgettext("calendar", "Cancelled: %(title)s", title=event.title)


def public_calendar(events: Iterable[Event], base_url: str, name: str | None = None, *,
                    refresh: timedelta | None = None) -> bytes:
    """A calendar of public events (no METHOD, ORGANIZER, ATTENDEE or join link) for download,
    in the page's language; `refresh` is how often a subscriber should fetch it again. A
    cancelled session stays in it, marked CANCELLED and its title saying so."""
    base_url = base_url.rstrip("/")
    calendar = _calendar()
    if name:
        calendar.add("x-wr-calname", name)
    if refresh is not None:
        calendar.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(refresh))
    for event in events:
        page = f"{base_url}/events/{event.slug}"
        vevent = VEvent.new(
            uid=event_uid(event),
            sequence=event.ical_sequence,
            stamp=_utc(event.updated_at),
            last_modified=_utc(event.updated_at),
            start=_utc(event.starts_at),
            end=_utc(event.ends_at),
            summary=_title(event),
            description="\n\n".join(p for p in (event.description.strip(), page) if p),
            url=page,
            location=event.location or None,
            status="CANCELLED" if event.is_cancelled else "CONFIRMED",
        )
        calendar.add_component(vevent)
    return calendar.to_ical()
