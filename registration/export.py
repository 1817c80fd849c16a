"""The one CSV writer for exports (UTF-8 with BOM, RFC 4180, formula-safe), and the attendee
export built on it, streamed so memory does not grow with the number of rows."""

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from extensions import db
from registration.models import Event, Registration
from registration.times import utc_iso

ATTENDEE_COLUMNS = (
    "event_slug", "event_title", "event_starts_at_utc", "status", "registered_at_utc", "name",
    "email", "organisation", "affiliation", "country", "timezone", "language", "consent_at_utc",
    "cancelled_at_utc",
)
# A spreadsheet reads a cell starting with one of these as a formula (or mangles it).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
# Rows are gathered up to about this many characters per chunk: few writes, bounded memory.
CHUNK_CHARS = 32 * 1024
BATCH_ROWS = 500


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
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        if buffer.tell() >= CHUNK_CHARS:
            yield _take(buffer)
    if buffer.tell():
        yield _take(buffer)


def _take(buffer: io.StringIO) -> bytes:
    chunk = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return chunk


def attendees_csv(event: Event | None = None) -> Iterator[bytes]:
    """The attendee export of one event (or of every event) as a stream of CSV chunks."""
    query = (
        sa.select(
            Event.slug, Event.title, Event.starts_at, Registration.status,
            Registration.registered_at, Registration.name, Registration.email,
            Registration.organisation, Registration.affiliation, Registration.country,
            Registration.timezone, Registration.language, Registration.consent_at,
            Registration.cancelled_at,
        )
        .join(Registration.event)
        .order_by(Event.starts_at, Event.id, Registration.registered_at, Registration.id)
        # A server-side cursor on PostgreSQL: rows arrive in batches, never all at once.
        .execution_options(yield_per=BATCH_ROWS)
    )
    if event is not None:
        query = query.where(Registration.event_id == event.id)
    return stream_csv(ATTENDEE_COLUMNS, _attendee_rows(query))


def _attendee_rows(query: sa.Select) -> Iterator[tuple]:
    with db.session.execute(query) as result:
        for row in result:
            yield (
                row.slug, row.title, utc_iso(row.starts_at), row.status,
                utc_iso(row.registered_at), row.name, row.email, row.organisation,
                row.affiliation, row.country, row.timezone, row.language,
                utc_iso(row.consent_at), utc_iso(row.cancelled_at) if row.cancelled_at else "",
            )
