"""The iCalendar we write: invites (RFC 5546) and public downloads, read back by vobject."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import vobject

from notifications import ical

NOW = datetime(2025, 6, 20, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def an_event(**fields):
    values = {
        "id": 7,
        "public_uid": "6f1c2e0a-4b7d-4e8a-9c3f-2a5b8d7e1f07",
        "slug": "climate-finance-101",
        "title": "Climate finance 101",
        "starts_at": datetime(2025, 7, 1, 12, 0, tzinfo=UTC),
        "ends_at": datetime(2025, 7, 1, 13, 30, tzinfo=UTC),
        "join_url": "https://meet.example.org/j/123456",
        "location": None,
        "description": "How cities fund climate action.",
        "status": "scheduled",
        "ical_sequence": 2,
        "created_at": NOW - timedelta(days=10),
        "updated_at": NOW,
    }
    values.update(fields)
    values["is_cancelled"] = values["status"] == "cancelled"
    return SimpleNamespace(**values)


def a_registration(**fields):
    values = {
        "name": "Aiko Tanaka",
        "email": "aiko.tanaka@example.org",
        "status": "confirmed",
        "language": "en",
        "ical_uid": "3f1c9a4e-0d7b-4a55-9d0e-2b8f6f1e8c11@forum-signup",
    }
    values.update(fields)
    return SimpleNamespace(**values)


def make_invite(method="REQUEST", sequence=0, event=None, registration=None, **kwargs):
    return ical.invite(
        event or an_event(), registration or a_registration(), method, sequence,
        "organisers@example.org", NOW, **kwargs,
    )


def content_lines(data: bytes) -> list[str]:
    """The unfolded content lines of an iCalendar stream."""
    text = data.decode("utf-8")
    assert text.endswith("\r\n")
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def test_request_invite_has_the_calendar_properties_and_no_calendar_level_uid():
    data = make_invite()
    lines = content_lines(data)
    calendar_part = lines[: lines.index("BEGIN:VEVENT")]
    assert "VERSION:2.0" in calendar_part
    assert "METHOD:REQUEST" in calendar_part
    assert "CALSCALE:GREGORIAN" in calendar_part
    assert any(line.startswith("PRODID:") for line in calendar_part)
    assert not any(line.startswith("UID") for line in calendar_part)
    assert lines.count("BEGIN:VEVENT") == 1

    parsed = vobject.readOne(data.decode())
    assert "uid" not in parsed.contents
    assert parsed.method.value == "REQUEST"


def test_request_invite_describes_the_seat_for_the_attendee():
    data = make_invite(sequence=3, join_url="https://meet.example.org/j/123456")
    vevent = vobject.readOne(data.decode()).vevent
    assert vevent.uid.value == "3f1c9a4e-0d7b-4a55-9d0e-2b8f6f1e8c11@forum-signup"
    assert vevent.sequence.value == "3"
    assert vevent.dtstamp.value == NOW
    assert vevent.summary.value == "Climate finance 101"
    assert vevent.status.value == "CONFIRMED"
    assert vevent.url.value == "https://meet.example.org/j/123456"
    assert vevent.location.value == "https://meet.example.org/j/123456"
    assert "How cities fund climate action." in vevent.description.value
    assert "/r/" not in vevent.description.value  # no manage link in a shareable calendar

    assert vevent.organizer.value == "mailto:organisers@example.org"
    assert vevent.organizer.params["CN"] == ["Forum organisers"]
    attendee = vevent.attendee
    assert attendee.value == "mailto:aiko.tanaka@example.org"
    assert attendee.params["CN"] == ["Aiko Tanaka"]
    # No calendar reply is read yet (replies_are_read): the invite asks for none.
    assert attendee.params["RSVP"] == ["FALSE"]
    assert attendee.params["PARTSTAT"] == ["NEEDS-ACTION"]
    assert attendee.params["ROLE"] == ["REQ-PARTICIPANT"]


def test_a_request_asks_for_a_reply_only_when_replies_are_read():
    asking = vobject.readOne(make_invite(rsvp=True).decode()).vevent.attendee
    assert asking.params["RSVP"] == ["TRUE"]
    assert ical.replies_are_read({}) is False
    assert ical.replies_are_read({"IMAP_HOST": "imap.example.org"}) is True


def test_a_cancel_attendee_has_no_rsvp_or_partstat():
    data = make_invite(method="CANCEL", sequence=1)
    attendee = vobject.readOne(data.decode()).vevent.attendee
    assert "RSVP" not in attendee.params and "PARTSTAT" not in attendee.params
    assert attendee.params["ROLE"] == ["REQ-PARTICIPANT"]
    attendee_line = next(line for line in content_lines(data) if line.startswith("ATTENDEE"))
    assert "RSVP" not in attendee_line and "PARTSTAT" not in attendee_line


def test_times_are_written_in_utc_with_z_even_when_given_in_a_named_zone():
    event = an_event(
        starts_at=datetime(2026, 3, 29, 12, 0, tzinfo=BERLIN),
        ends_at=datetime(2026, 3, 29, 13, 30, tzinfo=BERLIN),
    )
    data = make_invite(event=event)
    lines = content_lines(data)
    # 29 March 2026 is the spring change in Berlin: by noon it is UTC+2.
    assert "DTSTART:20260329T100000Z" in lines
    assert "DTEND:20260329T113000Z" in lines
    assert "TZID" not in data.decode()
    assert b"VTIMEZONE" not in data
    vevent = vobject.readOne(data.decode()).vevent
    assert vevent.dtstart.value == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)


def test_cancel_invite_keeps_the_uid_and_carries_no_join_link():
    data = make_invite(method="CANCEL", sequence=1, join_url="https://meet.example.org/j/1")
    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "CANCEL"
    vevent = parsed.vevent
    assert vevent.uid.value == a_registration().ical_uid
    assert vevent.sequence.value == "1"
    assert vevent.status.value == "CANCELLED"
    assert "url" not in vevent.contents
    assert b"meet.example.org" not in data


def test_the_invites_own_words_are_in_the_readers_language(app):
    japanese = a_registration(language="ja")
    request = vobject.readOne(make_invite(registration=japanese,
                                          join_url="https://meet.example.org/j/1").decode())
    assert "参加リンク: https://meet.example.org/j/1" in request.vevent.description.value
    cancel = vobject.readOne(make_invite(method="CANCEL", sequence=1,
                                         registration=japanese).decode())
    assert "このご登録はキャンセルされました。" in cancel.vevent.description.value
    english = vobject.readOne(make_invite(join_url="https://meet.example.org/j/1").decode())
    assert "Join: https://meet.example.org/j/1" in english.vevent.description.value


def test_request_without_a_join_link_given_carries_none():
    assert b"meet.example.org" not in make_invite()


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        make_invite(method="PUBLISH")


def test_long_lines_are_folded_at_75_octets_without_splitting_characters():
    event = an_event(title="気候ファイナンス入門 " * 12, description="Ünïcödé detail. " * 40)
    data = make_invite(event=event, registration=a_registration(name="田中 愛子 🌏" * 5))
    for line in data.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # each physical line is whole UTF-8
    vevent = vobject.readOne(data.decode()).vevent
    assert vevent.summary.value == "気候ファイナンス入門 " * 12
    assert vevent.attendee.params["CN"] == ["田中 愛子 🌏" * 5]


def test_attendee_name_with_quotes_and_line_breaks_cannot_break_the_property():
    data = make_invite(registration=a_registration(name='Eve "the" Hacker\r\nATTENDEE:mailto:x@x'))
    lines = content_lines(data)
    assert sum(line.startswith("ATTENDEE") for line in lines) == 1
    vevent = vobject.readOne(data.decode()).vevent
    assert len(vevent.contents["attendee"]) == 1
    assert vevent.attendee.value == "mailto:aiko.tanaka@example.org"


def test_invite_bytes_are_deterministic_for_the_same_inputs():
    assert make_invite() == make_invite()


def test_public_calendar_has_no_method_organizer_attendee_or_join_link():
    events = [an_event(), an_event(id=8, slug="urban-heat", title="Urban heat",
                                    public_uid="c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e08")]
    data = ical.public_calendar(events, "http://forum.example.org/", name="Forum programme")
    text = data.decode()
    for forbidden in ("METHOD", "ORGANIZER", "ATTENDEE", "meet.example.org"):
        assert forbidden not in text
    lines = content_lines(data)
    assert not any(line.startswith("UID") for line in lines[: lines.index("BEGIN:VEVENT")])
    parsed = vobject.readOne(text)
    assert parsed.x_wr_calname.value == "Forum programme"
    vevents = parsed.contents["vevent"]
    # The stored public UID, never the row id.
    assert [v.uid.value for v in vevents] == ["6f1c2e0a-4b7d-4e8a-9c3f-2a5b8d7e1f07@forum-signup",
                                              "c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e08@forum-signup"]
    assert vevents[1].url.value == "http://forum.example.org/events/urban-heat"
    assert vevents[0].dtstart.value == datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert "DTSTART:20250701T120000Z" in lines
    assert all(v.status.value == "CONFIRMED" for v in vevents)


def test_public_calendar_marks_a_cancelled_event_with_its_stored_higher_sequence():
    before = an_event()
    after = an_event(status="cancelled", ical_sequence=3, updated_at=NOW + timedelta(hours=2))
    first = vobject.readOne(ical.public_calendar([before], "http://f.example.org").decode())
    second = vobject.readOne(ical.public_calendar([after], "http://f.example.org").decode())
    assert second.vevent.uid.value == first.vevent.uid.value
    assert second.vevent.status.value == "CANCELLED"
    assert (int(first.vevent.sequence.value), int(second.vevent.sequence.value)) == (2, 3)


def test_single_event_download_needs_no_calendar_name():
    data = ical.public_calendar([an_event()], "http://forum.example.org")
    assert b"X-WR-CALNAME" not in data


def _whole_invite(event, registration, method, sequence, join_url, description):
    """The invite built the plain way, all of it per person: what invite() must equal."""
    from icalendar import vCalAddress

    answer = {"rsvp": False, "partstat": "NEEDS-ACTION"} if method == "REQUEST" else {}
    vevent = ical.VEvent.new(
        uid=registration.ical_uid, sequence=sequence, stamp=NOW, start=event.starts_at,
        end=event.ends_at, summary=event.title, description=description,
        location=join_url or event.location or None, url=join_url,
        status="CONFIRMED" if method == "REQUEST" else "CANCELLED",
        organizer=vCalAddress.new("organisers@example.org", cn="Forum organisers"),
        attendees=[vCalAddress.new(
            registration.email, cn=ical._display_name(registration.name) or registration.email,
            role="REQ-PARTICIPANT", **answer)],
    )
    calendar = ical._calendar(method)
    calendar.add_component(vevent)
    return calendar.to_ical()


@pytest.mark.parametrize("name, email", [
    ("Aiko Tanaka", "aiko.tanaka@example.org"),
    ("田中 愛子 🌏" * 6, "tanaka@example.org"),
    ('Ben "the Builder" O\'Connor, Jr.; PhD', "ben@example.org"),
    ("", "nameless@example.org"),
    ("x" * 190, "a-very-long-local-part-of-an-address-indeed@subdomain.example.org"),
])
@pytest.mark.parametrize("method, join_url", [
    ("REQUEST", "https://meet.example.org/j/123456"), ("REQUEST", None), ("CANCEL", None),
])
def test_an_invite_built_from_the_shared_part_is_byte_for_byte_the_whole_build(
    name, email, method, join_url
):
    event = an_event(title="Financement climat 🌍 " * 4, description="Ligne\nligne " * 30)
    registration = a_registration(name=name, email=email, ical_uid=f"{email}-uid@forum-signup")
    data = make_invite(method=method, sequence=2, event=event, registration=registration,
                       join_url=join_url)
    lines = [event.description.strip()]
    if join_url:
        lines.append(f"Join: {join_url}")
    if method == "CANCEL":
        lines.append("This registration is cancelled.")
    assert data == _whole_invite(event, registration, method, 2, join_url, "\n\n".join(lines))
