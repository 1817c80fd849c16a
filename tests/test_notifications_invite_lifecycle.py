"""The whole life of one calendar invite, end to end and read by parsers the app doesn't use.

A person signs up through the form, the organiser reschedules the session across the start of
summer time and then cancels it; the dispatcher sends each email through the file backend.
Each invite is read back with the standard library's email parser and with vobject (the app
writes with icalendar), then stored, version after version, in a real CalDAV server
(Radicale), whose time-range queries must find the event where a calendar would show it.
"""

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest
import vobject

from extensions import db
from notifications.dispatcher import dispatch
from registration import changes
from tests.caldav import RadicaleServer
from tests.conftest import make_event, outbox, sign_up

BERLIN = ZoneInfo("Europe/Berlin")
# The session first sits in the last week of winter time (CET, UTC+1), then moves past the
# change of 29 March 2026 into summer time (CEST, UTC+2): the same 12:00 on the wall clock is
# another hour in UTC, so only a correct conversion lands on the new instant.
OLD_START = datetime(2026, 3, 26, 12, 0, tzinfo=BERLIN).astimezone(UTC)
NEW_START = datetime(2026, 3, 30, 12, 0, tzinfo=BERLIN).astimezone(UTC)
LENGTH = timedelta(hours=1, minutes=30)
SIGNED_UP_AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RESCHEDULED_AT = SIGNED_UP_AT + timedelta(hours=1)
CANCELLED_AT = SIGNED_UP_AT + timedelta(hours=2)

ATTENDEE = "aiko.tanaka@example.org"
# Non-ASCII text long enough to be folded: no fold may split a UTF-8 character.
ATTENDEE_NAME = "田中 愛子 (Aiko Tanaka), 横浜市 国際局 グローバルネットワーク推進課"
DESCRIPTION = (
    "How cities fund climate action: green bonds, municipal climate funds and blended finance. "
    "都市の気候変動対策の資金調達：グリーンボンド、自治体の気候基金、ブレンデッド・ファイナンス。"
)

CALDAV = "urn:ietf:params:xml:ns:caldav"
XML_NAMES = {"D": "DAV:", "C": CALDAV}


def test_the_new_time_is_the_same_berlin_wall_clock_but_an_hour_earlier_in_utc():
    # Same wall-clock time, a different hour in UTC: otherwise the instant checks prove little.
    assert OLD_START == datetime(2026, 3, 26, 11, 0, tzinfo=UTC)
    assert NEW_START == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


# --- the emails ------------------------------------------------------------------------------


@dataclass
class Invite:
    """One delivered email with its calendar part, as raw bytes and as vobject read it."""

    mail: EmailMessage
    mime_method: str
    data: bytes
    calendar: vobject.base.Component

    @property
    def event(self):
        [vevent] = self.calendar.contents["vevent"]
        return vevent

    @property
    def uid(self) -> str:
        return self.event.uid.value

    @property
    def sequence(self) -> int:
        return int(self.event.sequence.value)


def invite_of(mail: EmailMessage) -> Invite:
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    data = part.get_payload(decode=True)
    return Invite(mail, part.get_param("method"), data, vobject.readOne(data.decode("utf-8")))


def deliver(app, now: datetime) -> Invite:
    """Dispatch what is due at `now`: exactly one new email, which must carry an invite."""
    already = {mail["Message-ID"] for mail in outbox(app)}
    summary = dispatch(now)
    assert (summary.sent, summary.failed, summary.retrying) == (1, 0, 0), summary
    [mail] = [mail for mail in outbox(app) if mail["Message-ID"] not in already]
    return invite_of(mail)


@pytest.fixture
def lifecycle(app, client):
    """Sign-up, reschedule across the DST change, cancellation: the three invites sent."""
    app.config["CLOCK"] = lambda: SIGNED_UP_AT
    event = make_event(
        slug="climate-finance-dst",
        starts_at=OLD_START,
        ends_at=OLD_START + LENGTH,
        description=DESCRIPTION,
        created_at=SIGNED_UP_AT - timedelta(days=7),
        updated_at=SIGNED_UP_AT - timedelta(days=7),
    )
    response = sign_up(client, event.slug, email=ATTENDEE, name=ATTENDEE_NAME)
    assert response.status_code == 303, response.status_code
    confirmation = deliver(app, SIGNED_UP_AT)

    app.config["CLOCK"] = lambda: RESCHEDULED_AT
    changes.change_event(event, {"starts_at": NEW_START, "ends_at": NEW_START + LENGTH},
                          RESCHEDULED_AT)
    db.session.commit()
    update = deliver(app, RESCHEDULED_AT)

    app.config["CLOCK"] = lambda: CANCELLED_AT
    changes.change_event(event, {"status": "cancelled"}, CANCELLED_AT)
    db.session.commit()
    cancellation = deliver(app, CANCELLED_AT)
    return confirmation, update, cancellation


def mailto(prop) -> str:
    scheme, _, address = prop.value.partition(":")
    assert scheme.lower() == "mailto", prop.value
    return address


def is_utc(moment) -> bool:
    return isinstance(moment, datetime) and moment.utcoffset() == timedelta(0)


def test_confirmation_update_and_cancel_are_one_event_with_a_rising_sequence(lifecycle):
    confirmation, update, cancellation = lifecycle
    assert [i.calendar.method.value for i in lifecycle] == ["REQUEST", "REQUEST", "CANCEL"]
    assert len({i.uid for i in lifecycle}) == 1
    assert confirmation.sequence < update.sequence < cancellation.sequence

    assert (confirmation.event.dtstart.value, confirmation.event.dtend.value) == (
        OLD_START, OLD_START + LENGTH)
    # The update carries the new instant: 12:00 in Berlin is now 10:00Z, not 11:00Z.
    assert (update.event.dtstart.value, update.event.dtend.value) == (
        NEW_START, NEW_START + LENGTH)
    assert (cancellation.event.dtstart.value, cancellation.event.dtend.value) == (
        NEW_START, NEW_START + LENGTH)
    assert cancellation.event.status.value == "CANCELLED"
    assert [i.event.status.value for i in (confirmation, update)] == ["CONFIRMED", "CONFIRMED"]
    # Each version is stamped when it was sent.
    assert [i.event.dtstamp.value for i in lifecycle] == [
        SIGNED_UP_AT, RESCHEDULED_AT, CANCELLED_AT]


@pytest.mark.parametrize("step", ["confirmation", "update", "cancellation"])
def test_each_invite_is_a_well_formed_itip_message_for_its_recipient(app, lifecycle, step):
    invite = lifecycle[["confirmation", "update", "cancellation"].index(step)]
    calendar, vevent = invite.calendar, invite.event

    # The MIME part names the method the calendar carries (Exchange rejects a mismatch).
    assert invite.mime_method == calendar.method.value
    [part] = [p for p in invite.mail.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_content_charset() == "utf-8"
    assert part["Content-Disposition"] is None
    # An invite.ics attachment, if any, holds the very same bytes.
    for attachment in invite.mail.iter_attachments():
        if attachment.get_filename() == "invite.ics":
            assert attachment.get_payload(decode=True) == invite.data

    # RFC 5546: no calendar-level UID (RFC 7986), one event, no time zones needed.
    assert "uid" not in calendar.contents
    assert "vtimezone" not in calendar.contents
    for prop in (vevent.dtstart, vevent.dtend, vevent.dtstamp):
        assert is_utc(prop.value), (prop.name, prop.value)
        assert "TZID" not in prop.params, prop.name

    assert mailto(vevent.organizer) == app.config["ORGANISER_EMAIL"]
    [attendee] = vevent.contents["attendee"]
    assert mailto(attendee) == invite.mail["To"].addresses[0].addr_spec == ATTENDEE
    if calendar.method.value == "REQUEST":  # no calendar reply is read yet: none asked for
        assert [v.upper() for v in attendee.params["RSVP"]] == ["FALSE"]
    else:  # a CANCEL asks nothing of the attendee
        assert "RSVP" not in attendee.params and "PARTSTAT" not in attendee.params

    # RFC 5545 §3.1: CRLF line ends, lines of at most 75 octets, folds between characters.
    assert invite.data.endswith(b"\r\n")
    lines = invite.data.split(b"\r\n")[:-1]
    assert not [line for line in lines if b"\n" in line or b"\r" in line]
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines), "nothing was long enough to fold"
    for line in lines:
        line.decode("utf-8")  # raises if a fold split a character


# --- the same versions in a real CalDAV server -----------------------------------------------


@pytest.fixture(scope="module")
def radicale(tmp_path_factory):
    server = RadicaleServer(tmp_path_factory.mktemp("radicale")).start()
    yield server
    server.stop()


@pytest.fixture
def calendar_url(radicale):
    """A new, empty calendar collection of the server's user."""
    url = f"{radicale.url}/{radicale.user}/forum-{uuid.uuid4().hex[:12]}/"
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<C:mkcalendar xmlns:D="DAV:" xmlns:C="{CALDAV}"><D:set><D:prop>'
        "<D:displayname>Forum sessions</D:displayname>"
        '<C:supported-calendar-component-set><C:comp name="VEVENT"/>'
        "</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"
    )
    response = radicale.session().request("MKCALENDAR", url, data=body.encode(),
                                          headers={"Content-Type": "application/xml"})
    assert response.status_code == 201, (response.status_code, response.text)
    return url


def as_stored_object(invite: Invite) -> bytes:
    """The invite as a calendar object resource: an iTIP METHOD has no place in a CalDAV store."""
    data, count = re.subn(rb"^METHOD:[^\r\n]*\r\n", b"", invite.data, flags=re.MULTILINE)
    assert count == 1
    return data


def query_time_range(session, calendar_url, start: datetime, end: datetime) -> dict:
    """calendar-query REPORT for events overlapping [start, end): UID → the stored calendar."""
    stamp = "%Y%m%dT%H%M%SZ"
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{CALDAV}">'
        "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start.strftime(stamp)}" end="{end.strftime(stamp)}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    response = session.request("REPORT", calendar_url, data=body.encode(), headers={
        "Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert response.status_code == 207, (response.status_code, response.text)
    found = {}
    for item in ET.fromstring(response.content).findall("D:response", XML_NAMES):
        data = item.find(".//C:calendar-data", XML_NAMES)
        calendar = vobject.readOne(data.text)
        found[calendar.vevent.uid.value] = (unquote(item.findtext("D:href", "", XML_NAMES)),
                                             calendar)
    return found


def around(moment: datetime) -> tuple[datetime, datetime]:
    return moment, moment + timedelta(minutes=1)


def test_a_caldav_server_finds_each_version_at_its_own_time_and_the_cancel_as_cancelled(
    lifecycle, radicale, calendar_url
):
    confirmation, update, cancellation = lifecycle
    session = radicale.session()
    uid = confirmation.uid
    resource = calendar_url + quote(f"{uid}.ics", safe="@")
    path = unquote(urlsplit(resource).path)

    def put(invite):
        data = as_stored_object(invite)
        assert "method" not in vobject.readOne(data.decode("utf-8")).contents
        return session.put(resource, data=data,
                           headers={"Content-Type": "text/calendar; charset=utf-8"})

    def found_around(moment):
        return query_time_range(session, calendar_url, *around(moment))

    response = put(confirmation)
    assert response.status_code == 201, (response.status_code, response.text)
    assert found_around(OLD_START)[uid][0] == path
    assert uid not in found_around(NEW_START)

    # The update replaces the same resource: found at the new instant, no longer at the old.
    response = put(update)
    assert response.status_code == 204, (response.status_code, response.text)
    href, stored = found_around(NEW_START)[uid]
    assert href == path
    assert int(stored.vevent.sequence.value) == update.sequence
    assert stored.vevent.dtstart.value == NEW_START
    assert uid not in found_around(OLD_START)
    # Nor an hour early, where a conversion blind to summer time would have put it.
    assert uid not in query_time_range(session, calendar_url, NEW_START - timedelta(hours=1),
                                       NEW_START)

    # The CANCEL version stored: what a client syncing the calendar then reads.
    response = put(cancellation)
    assert response.status_code == 204, (response.status_code, response.text)
    response = session.get(resource)
    assert response.status_code == 200
    stored = vobject.readOne(response.text)
    assert stored.vevent.uid.value == uid
    assert stored.vevent.status.value == "CANCELLED"
    assert int(stored.vevent.sequence.value) == cancellation.sequence
    assert found_around(NEW_START)[uid][1].vevent.status.value == "CANCELLED"

    # A client that removes a cancelled event: gone from the store and from every query.
    assert session.delete(resource).status_code in (200, 204)
    assert session.get(resource).status_code == 404
    assert uid not in found_around(NEW_START)
    assert found_around(OLD_START) == {}
