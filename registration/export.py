"""The one CSV writer for exports (UTF-8 with BOM, RFC 4180, formula-safe), the attendee
export's columns (defined once, for the CSV and the workbook) and its rows, read from one query as
they are consumed, so memory does not grow with the number of rows."""

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from extensions import db, read_only
from registration.forms import countries
from registration.models import AFFILIATIONS, LANGUAGE_LABELS, Event, Registration


@dataclass(frozen=True)
class Column:
    """A column of the attendee export: its CSV name, its heading in a workbook, the attribute
    it reads, whether it is a time (UTC), and for a code the heading and the names of its
    meanings (English names, lazy strings resolved when a workbook is built)."""

    name: str
    heading: str
    source: Any
    is_time: bool = False
    label_heading: str | None = None
    labels: Callable[[], Mapping[str, Any]] | None = None


# The CSV's columns in order; scripts read them by position, so new ones only go at the end.
COLUMNS = (
    Column("event_slug", "Session slug", Event.slug),
    Column("event_title", "Session title", Event.title),
    Column("event_starts_at_utc", "Starts", Event.starts_at, is_time=True),
    Column("status", "Status", Registration.status),
    Column("registered_at_utc", "Registered", Registration.registered_at, is_time=True),
    Column("name", "Name", Registration.name),
    Column("email", "Email", Registration.email),
    Column("organisation", "Organisation", Registration.organisation),
    Column("affiliation", "Type of organisation (code)", Registration.affiliation,
           label_heading="Type of organisation", labels=lambda: AFFILIATIONS),
    Column("country", "Country (ISO code)", Registration.country,
           label_heading="Country", labels=lambda: dict(countries("en"))),
    Column("timezone", "Attendee's time zone", Registration.timezone),
    Column("language", "Language (code)", Registration.language,
           label_heading="Language", labels=lambda: LANGUAGE_LABELS),
    Column("consent_at_utc", "Consent given", Registration.consent_at, is_time=True),
    Column("cancelled_at_utc", "Cancelled", Registration.cancelled_at, is_time=True),
    # The latest answer the attendee's calendar sent (accepted, tentative, declined), if any.
    Column("rsvp", "Calendar answer", Registration.rsvp),
)
ATTENDEE_COLUMNS = tuple(column.name for column in COLUMNS)
# A spreadsheet reads a cell starting with one of these as a formula (or mangles it).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
_RISKY_FIRST = frozenset(FORMULA_STARTS)  # each is one character
# Rows are gathered up to about this many characters per chunk: few writes, bounded memory.
CHUNK_CHARS = 32 * 1024
BATCH_ROWS = 2000


def safe_cell(value: Any) -> str:
    """The value as text, with a ' in front if a spreadsheet could take it for a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def stream_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """Encode an export as chunks of bytes: BOM, header, then the rows as they come."""
    buffer = io.StringIO()
    # Excel needs the BOM to read UTF-8 (Japanese names) and CRLF is what RFC 4180 says.
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([safe_cell(name) for name in header])
    # The header goes out at once, before the query runs, so a download starts straight away.
    yield _take(buffer)
    writerow, tell, risky = writer.writerow, buffer.tell, _RISKY_FIRST
    for row in rows:
        # safe_cell() inlined for the usual cell, plain text that starts harmlessly: per cell,
        # a call cost a third of an export's time.
        writerow([value if value.__class__ is str and value[:1] not in risky
                  else safe_cell(value) for value in row])
        if tell() >= CHUNK_CHARS:
            yield _take(buffer)
    if buffer.tell():
        yield _take(buffer)


def _take(buffer: io.StringIO) -> bytes:
    chunk = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return chunk


def utc_text(column, dialect: str) -> sa.ColumnElement[str]:
    """A UTC timestamp column as utc_iso() writes it ("2025-07-20T09:00:00Z"), formatted by the
    database: in Python it cost three quarters of an export's time."""
    if dialect == "postgresql":
        return sa.func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS"Z"', type_=sa.String)
    # SQLite keeps the naive UTC time as text, "2025-07-20 09:00:00.000000": cut, not parsed,
    # so the seconds are truncated as utc_iso() does (strftime() would round them).
    return sa.func.replace(sa.func.substr(column, 1, 19), " ", "T", type_=sa.String).concat("Z")


def attendee_rows(event: Event | None = None, status: str | None = None) -> Iterator[Sequence]:
    """The rows of the attendee export, in ATTENDEE_COLUMNS order, the times as text: those of
    one event (or of every event), of one status (or all), read in batches as they are
    consumed."""
    dialect = db.session.get_bind().dialect.name
    return _rows(_attendee_query(
        [utc_text(column.source, dialect) if column.is_time else column.source
         for column in COLUMNS], event, status))


def attendee_records(event: Event | None = None,
                     status: str | None = None) -> Iterator[Sequence]:
    """The same rows with the times as aware UTC datetimes (None where unset) and the session's
    time zone after the last column: what a workbook needs."""
    return _rows(_attendee_query([column.source for column in COLUMNS] + [Event.timezone],
                                 event, status))


def _attendee_query(selected: list, event: Event | None, status: str | None) -> sa.Select:
    query = (
        sa.select(*selected)
        .join(Registration.event)
        .order_by(Event.starts_at, Event.id, Registration.registered_at, Registration.id)
        # A server-side cursor on PostgreSQL: rows arrive in batches, never all at once.
        .execution_options(yield_per=BATCH_ROWS)
    )
    if event is not None:
        query = query.where(Registration.event_id == event.id)
    if status is not None:
        query = query.where(Registration.status == status)
    return query


def attendees_csv(event: Event | None = None, status: str | None = None) -> Iterator[bytes]:
    """The attendee export of one event (or of every event) as a stream of CSV chunks."""
    return stream_csv(ATTENDEE_COLUMNS, attendee_rows(event, status))


def _rows(query: sa.Select) -> Iterator[Sequence]:
    # Plain rows from the session's connection (in its transaction): the ORM's result layer
    # adds nothing for columns, and cost a tenth of the time.
    # Begun as a read-only transaction, so SQLite's write lock is not held while a long export
    # streams (the caller ends any transaction it had open first).
    with read_only(), db.session.connection().execute(query) as result:
        yield from result
