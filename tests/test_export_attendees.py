"""`flask export-attendees`: a CSV that opens cleanly in Excel, never runs a formula, keeps every
character of the data, and is written as a stream."""

import codecs
import csv
import io
import types
from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from registration import services
from registration.export import (
    ATTENDEE_COLUMNS,
    CHUNK_CHARS,
    FORMULA_STARTS,
    attendees_csv,
    safe_cell,
    stream_csv,
)
from registration.models import Registration
from tests.conftest import NOW, make_event

HOSTILE = [
    "=1+2",
    "+SUM(A1:A9)",
    "-2+3",
    "@cmd|' /C calc'!A0",
    "\tTabbed",
    "\rCarriage return",
    "\nLine feed",
    '=1+2";=1+2',
    "田中 愛子",
    "Zoë 🌍🔥 Climate",
    "First line\nsecond line\r\nthird line",
    'Comma, "quotes" and all',
    "'Already quoted",
    "Plain name",
]


def applicant(n, **fields):
    values = {
        "name": f"Person {n}", "email": f"person{n}@example.org",
        "email_key": f"person{n}@example.org", "organisation": "City of Bonn",
        "affiliation": "local_government", "country": "DE", "timezone": "Europe/Berlin",
        "language": "en", "consent_version": "2025-06",
    }
    values.update(fields)
    return services.Applicant(**values)


def read_export(data: bytes) -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_hostile_rows_safe(rows: list[list[str]], values: list[str]) -> None:
    """The export of the hostile sign-ups: no cell can start a formula, and each is the value
    typed once the one added ' is removed (name as typed, organisation reversed)."""
    assert rows[0] == list(ATTENDEE_COLUMNS)
    assert len(rows) == 1 + len(values)
    for row, value in zip(rows[1:], values, strict=True):
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), row
        name, email, organisation = row[5], row[6], row[7]
        assert unprefixed(name) == value
        assert name == ("'" + value if value.startswith(FORMULA_STARTS) else value)
        assert unprefixed(organisation) == value[::-1]
        assert email.startswith("'-") and unprefixed(email) == email[1:]
        assert row[1] == "'@SUM(1+1)*cmd|' /C calc'!A0"


def unprefixed(cell: str) -> str:
    """The original value: the cell without the one ' the export adds before a risky start."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def export(runner, tmp_path, *args):
    path = tmp_path / "attendees.csv"
    result = runner.invoke(args=["export-attendees", *args, "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path.read_bytes()


def test_hostile_values_come_out_formula_safe_and_otherwise_unchanged(app, runner, tmp_path):
    values = list(HOSTILE)
    if db.engine.dialect.name == "sqlite":
        values.append("\0Nul first")  # PostgreSQL text can't hold NUL at all
    event = make_event(title="@SUM(1+1)*cmd|' /C calc'!A0")
    for n, value in enumerate(values):
        services.sign_up(event, applicant(n, name=value, organisation=value[::-1],
                                          email=f"-{n}@example.org"), NOW)
    db.session.commit()

    assert_hostile_rows_safe(read_export(export(runner, tmp_path, event.slug)), values)


def test_the_file_is_utf8_with_bom_and_crlf_rows_quoted_as_rfc_4180_says(app, runner, tmp_path):
    event = make_event()
    services.sign_up(event, applicant(1, name='Aiko "AT" Tanaka, 田中', organisation="a\nb"),
                     NOW)
    db.session.commit()

    data = export(runner, tmp_path)

    assert data.startswith(codecs.BOM_UTF8 + b"event_slug,event_title,")
    header, _, body = data.partition(b"\r\n")
    # Columns are only ever added at the end: the calendar answer came last.
    assert header.endswith(b"consent_at_utc,cancelled_at_utc,rsvp")
    assert '"Aiko ""AT"" Tanaka, 田中"'.encode() in body
    assert b'"a\nb"' in body
    assert body.endswith(b"\r\n")


def test_each_registration_shows_its_status_and_times_in_utc(app, runner, tmp_path):
    event = make_event(capacity=1)
    services.sign_up(event, applicant(1), NOW)
    services.sign_up(event, applicant(2), NOW + timedelta(minutes=1))
    third = services.sign_up(event, applicant(3), NOW + timedelta(minutes=2))
    services.cancel(third, NOW + timedelta(hours=1))
    third.rsvp = "declined"
    db.session.commit()

    rows = read_export(export(runner, tmp_path, event.slug))

    by_email = {row[6]: dict(zip(ATTENDEE_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert [by_email[f"person{n}@example.org"]["status"] for n in (1, 2, 3)] == [
        "confirmed", "waitlisted", "cancelled"]
    first, third_row = by_email["person1@example.org"], by_email["person3@example.org"]
    assert first["event_slug"] == "climate-finance-101"
    assert first["event_starts_at_utc"] == "2025-07-20T09:00:00Z"
    assert first["registered_at_utc"] == first["consent_at_utc"] == "2025-06-20T09:00:00Z"
    assert (first["organisation"], first["affiliation"], first["country"], first["timezone"],
            first["language"]) == ("City of Bonn", "local_government", "DE", "Europe/Berlin",
                                   "en")
    assert first["cancelled_at_utc"] == ""
    assert third_row["cancelled_at_utc"] == "2025-06-20T10:00:00Z"
    # The answer their calendar sent, if any.
    assert (first["rsvp"], third_row["rsvp"]) == ("", "declined")


def test_without_a_slug_every_event_is_exported_and_with_one_only_that_event(
    app, runner, tmp_path
):
    first = make_event(slug="first-session")
    second = make_event(slug="second-session", starts_at=NOW + timedelta(days=40))
    services.sign_up(first, applicant(1), NOW)
    services.sign_up(second, applicant(2), NOW)
    services.sign_up(second, applicant(3), NOW)
    db.session.commit()

    everything = read_export(export(runner, tmp_path))
    one = read_export(export(runner, tmp_path, "second-session"))

    assert [row[0] for row in everything[1:]] == ["first-session", "second-session",
                                                 "second-session"]
    assert [row[0] for row in one[1:]] == ["second-session", "second-session"]


def test_an_event_without_registrations_exports_just_the_header(app, runner, tmp_path):
    event = make_event()

    assert read_export(export(runner, tmp_path, event.slug)) == [list(ATTENDEE_COLUMNS)]


def test_without_an_output_file_the_csv_goes_to_standard_output(app, runner):
    event = make_event()
    services.sign_up(event, applicant(1, name="田中 愛子"), NOW)
    db.session.commit()

    result = runner.invoke(args=["export-attendees", event.slug])

    assert result.exit_code == 0, result.output
    rows = read_export(result.stdout_bytes)
    assert rows[1][5] == "田中 愛子"


def test_an_unknown_slug_is_one_clear_line_and_writes_no_file(app, runner, tmp_path):
    make_event()
    path = tmp_path / "attendees.csv"

    result = runner.invoke(args=["export-attendees", "no-such-session", "-o", str(path)])

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: No event has the slug "
                                                  "'no-such-session'."]
    assert not path.exists()


def test_the_export_is_a_stream_of_bounded_chunks_not_one_big_string(app):
    event = make_event()
    db.session.execute(sa.insert(Registration), [
        {
            "event_id": event.id, "status": "confirmed", "name": f"Attendee {n:05}",
            "email": f"a{n}@example.org", "email_key": f"a{n}@example.org",
            "organisation": "City of Yokohama 横浜市", "affiliation": "local_government",
            "country": "JP", "timezone": "Asia/Tokyo", "language": "ja", "registered_at": NOW,
            "consent_at": NOW, "consent_version": "2025-06", "token_nonce": f"n{n}",
            "token_digest": f"d{n}", "ical_uid": f"u{n}@forum-signup", "ical_sequence": 0,
        }
        for n in range(2000)
    ])
    db.session.commit()

    streamed = []

    def note_streaming(conn, cursor, statement, parameters, context, executemany):
        if "FROM registrations" in statement:
            streamed.append(context.execution_options.get("stream_results"))

    sa.event.listen(db.engine, "before_cursor_execute", note_streaming)
    try:
        stream = attendees_csv(event)
        assert isinstance(stream, types.GeneratorType)
        chunks = list(stream)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note_streaming)

    # Rows come from a server-side cursor (PostgreSQL) in batches, never fetched all at once.
    assert streamed == [True]
    # The header leaves at once; rows follow in chunks of bounded size, however many there are.
    assert read_export(chunks[0]) == [list(ATTENDEE_COLUMNS)]
    assert len(chunks) > 5
    assert max(len(chunk) for chunk in chunks) < 4 * CHUNK_CHARS + 1000
    rows = read_export(b"".join(chunks))
    assert len(rows) == 2001
    assert rows[-1][5] == "Attendee 01999"


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_starting_like_a_formula_gets_one_quote_and_keeps_its_data(start):
    assert safe_cell(start + "1+2") == "'" + start + "1+2"


@pytest.mark.parametrize("value, cell", [("Tanaka", "Tanaka"), ("1-2", "1-2"), (None, ""),
                                         (42, "42"), ("'x", "'x"), (" =1", " =1"), ("", "")])
def test_a_cell_that_is_not_a_formula_is_written_as_it_is(value, cell):
    assert safe_cell(value) == cell


def test_nul_and_control_characters_survive_the_writer():
    data = b"".join(stream_csv(["a", "b"], [["\0x", "y\0"], ["\r\n", "\t"]]))

    assert read_export(data) == [["a", "b"], ["'\0x", "y\0"], ["'\r\n", "'\t"]]


def test_the_csv_header_and_a_row_are_pinned_byte_for_byte(app, runner, tmp_path):
    # Spreadsheets and scripts read these columns by position: new ones may only follow them.
    event = make_event(title="Climate finance 101", timezone="Asia/Tokyo")
    registration = services.sign_up(event, applicant(1, name="田中 愛子", country="JP",
                                                     timezone="Asia/Tokyo", language="ja"), NOW)
    services.cancel(registration, NOW + timedelta(hours=1, seconds=30))
    db.session.commit()

    data = export(runner, tmp_path, event.slug)

    assert data == codecs.BOM_UTF8 + (
        "event_slug,event_title,event_starts_at_utc,status,registered_at_utc,name,email,"
        "organisation,affiliation,country,timezone,language,consent_at_utc,cancelled_at_utc,"
        "rsvp\r\n"
        "climate-finance-101,Climate finance 101,2025-07-20T09:00:00Z,cancelled,"
        "2025-06-20T09:00:00Z,田中 愛子,person1@example.org,City of Bonn,local_government,JP,"
        "Asia/Tokyo,ja,2025-06-20T09:00:00Z,2025-06-20T10:00:30Z,\r\n"
    ).encode()
