"""The programme as the importer's own file: every column it reads, in its order, times on the
wall clock of each event's zone, and cells kept from spreadsheets' formulas in a way the
importer undoes, so that a file downloaded and uploaded unchanged changes nothing."""

import re
from collections.abc import Iterator

import sqlalchemy as sa

from extensions import db
from registration.export import FORMULA_STARTS, stream_csv
from registration.models import Event
from registration.programme_rules import COLUMNS, wall_clock

_RISKY = "".join(FORMULA_STARTS).replace("\0", "\\x00")
# A value a spreadsheet would read as a formula, behind any number of quotes: the exporter puts
# one more quote in front, the importer takes one away, so every value comes back as it was
# (a title typed as "'=x" is written "''=x" and read back "'=x").
_QUOTED_ON_EXPORT = re.compile(f"'*[{re.escape(_RISKY)}]")
_QUOTED_BY_EXPORT = re.compile(f"'+[{re.escape(_RISKY)}]")


def formula_safe(text: str) -> str:
    """A cell's text as the programme file writes it: a ' in front of what a spreadsheet would
    take for a formula (as every export does), and in front of such a value already quoted."""
    return "'" + text if _QUOTED_ON_EXPORT.match(text) else text


def as_written(cell: str) -> str:
    """A cell of a programme file as its author meant it: the ' that formula_safe adds taken
    away again (a ' before anything else is the value's own)."""
    return cell[1:] if _QUOTED_BY_EXPORT.match(cell) else cell


def event_cells(event: Event) -> dict[str, str]:
    """An event as the text of its programme row (and of the console's form), in COLUMNS
    order: times on the wall clock of its zone, blank for no value."""

    def text(value) -> str:
        return "" if value is None else str(value)

    return {
        "slug": event.slug, "title": event.title, "kind": text(event.kind),
        "pillar": text(event.pillar),
        "starts_at": wall_clock(event.starts_at, event.timezone),
        "ends_at": wall_clock(event.ends_at, event.timezone),
        "timezone": event.timezone, "capacity": text(event.capacity),
        "language": text(event.language), "join_url": text(event.join_url),
        "location": text(event.location), "description": event.description,
        "status": text(event.status), "recording_url": text(event.recording_url),
    }


def programme_rows() -> list[list[str]]:
    """Every event (cancelled and past ones too) as a row of the file, by start then slug."""
    events = db.session.scalars(sa.select(Event).order_by(Event.starts_at, Event.slug))
    return [[formula_safe(cells[name]) for name in COLUMNS]
            for cells in map(event_cells, events)]


def programme_csv(rows: list[list[str]]) -> Iterator[bytes]:
    """The rows as the export's CSV (UTF-8 with BOM, CRLF), under the importer's header."""
    # The rows are formula-safe already, so the writer's own guard leaves them as they are.
    return stream_csv(COLUMNS, rows)
