"""The one CSV writer for exports (UTF-8 with BOM, RFC 4180, formula-safe) and its XLSX twin,
and the attendee export built on them from one row source, so memory does not grow with the
number of rows."""

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, Cell

from extensions import db, read_only
from registration.models import Event, Registration

ATTENDEE_COLUMNS = (
    "event_slug", "event_title", "event_starts_at_utc", "status", "registered_at_utc", "name",
    "email", "organisation", "affiliation", "country", "timezone", "language", "consent_at_utc",
    "cancelled_at_utc", "rsvp",
)
# A spreadsheet reads a cell starting with one of these as a formula (or mangles it).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
_RISKY_FIRST = frozenset(FORMULA_STARTS)  # each is one character
# Rows are gathered up to about this many characters per chunk: few writes, bounded memory.
CHUNK_CHARS = 32 * 1024
BATCH_ROWS = 2000
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What an XLSX cell can't hold as it is, written in Excel's own escape, _x0000_ (ECMA-376
# ST_Xstring): the control characters XML forbids, CR (an XML reader turns CR LF into LF),
# non-characters and lone surrogates; and the "_" of any text that already reads like an
# escape (either case of x, to be safe), so a typed "_x0041_" comes back as typed, not as "A".
XLSX_ESCAPE = re.compile(
    r"[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]|_(?=[xX][0-9A-Fa-f]{4}_)"
)
# Larger workbooks go to disk while they are written and sent.
XLSX_SPOOL_BYTES = 1024 * 1024


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


def xlsx_text(value: Any) -> str:
    """The value as text an XLSX cell can hold, anything it can't escaped as Excel does."""
    text = "" if value is None else str(value)
    return XLSX_ESCAPE.sub(lambda match: f"_x{ord(match.group()):04X}_", text)


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], file: IO[bytes],
               sheet_title: str = "Export") -> None:
    """Write an export as an XLSX workbook of text cells (never a formula) into a binary file.

    openpyxl's write-only mode writes each row as it comes (to a temporary file of its own);
    the workbook can only be sent once complete.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    sheet.freeze_panes = "A2"
    sheet.append([_xlsx_cell(sheet, name) for name in header])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    workbook.save(file)


def _xlsx_cell(sheet, value: Any) -> str | Cell | None:
    text = xlsx_text(value)
    if not text:
        return None  # no cell at all: it reads back empty, as in the CSV
    if text.startswith("=") or text in ERROR_CODES:
        # openpyxl makes a formula of "=…" and an error of "#N/A": say it is text.
        cell = WriteOnlyCell(sheet, text)
        cell.data_type = "s"
        return cell
    return text  # openpyxl stores any other str as a string cell


def utc_text(column, dialect: str) -> sa.ColumnElement[str]:
    """A UTC timestamp column as utc_iso() writes it ("2025-07-20T09:00:00Z"), formatted by the
    database: in Python it cost three quarters of an export's time."""
    if dialect == "postgresql":
        return sa.func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS"Z"', type_=sa.String)
    # SQLite keeps the naive UTC time as text, "2025-07-20 09:00:00.000000": cut, not parsed,
    # so the seconds are truncated as utc_iso() does (strftime() would round them).
    return sa.func.replace(sa.func.substr(column, 1, 19), " ", "T", type_=sa.String).concat("Z")


def attendee_rows(event: Event | None = None, status: str | None = None) -> Iterator[Sequence]:
    """The rows of the attendee export, in ATTENDEE_COLUMNS order: those of one event (or of
    every event), of one status (or all), read in batches as they are consumed."""
    dialect = db.session.get_bind().dialect.name
    query = (
        sa.select(
            Event.slug, Event.title, utc_text(Event.starts_at, dialect), Registration.status,
            utc_text(Registration.registered_at, dialect), Registration.name,
            Registration.email, Registration.organisation, Registration.affiliation,
            Registration.country, Registration.timezone, Registration.language,
            utc_text(Registration.consent_at, dialect),
            utc_text(Registration.cancelled_at, dialect), Registration.rsvp,
        )
        .join(Registration.event)
        .order_by(Event.starts_at, Event.id, Registration.registered_at, Registration.id)
        # A server-side cursor on PostgreSQL: rows arrive in batches, never all at once.
        .execution_options(yield_per=BATCH_ROWS)
    )
    if event is not None:
        query = query.where(Registration.event_id == event.id)
    if status is not None:
        query = query.where(Registration.status == status)
    return _rows(query)


def attendees_csv(event: Event | None = None, status: str | None = None) -> Iterator[bytes]:
    """The attendee export of one event (or of every event) as a stream of CSV chunks."""
    return stream_csv(ATTENDEE_COLUMNS, attendee_rows(event, status))


def attendees_xlsx(event: Event | None = None, status: str | None = None) -> IO[bytes]:
    """The same export as an XLSX workbook in a temporary file, rewound; the caller closes it
    (which deletes it)."""
    file = tempfile.SpooledTemporaryFile(max_size=XLSX_SPOOL_BYTES, suffix=".xlsx")
    try:
        write_xlsx(ATTENDEE_COLUMNS, attendee_rows(event, status), file,
                   sheet_title="Attendees")
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return file


def _rows(query: sa.Select) -> Iterator[Sequence]:
    # Plain rows from the session's connection (in its transaction): the ORM's result layer
    # adds nothing for columns, and cost a tenth of the time.
    # Begun as a read-only transaction, so SQLite's write lock is not held while a long export
    # streams (the caller ends any transaction it had open first).
    with read_only(), db.session.connection().execute(query) as result:
        yield from result
