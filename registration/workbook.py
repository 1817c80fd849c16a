"""The attendee export as an XLSX workbook people can sort and filter: date-time cells in UTC and
in the session's own zone, names beside codes, a bold frozen header, an autofilter and fitted
column widths; text stays text, never a formula."""

import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from registration.export import COLUMNS, attendee_records
from registration.models import Event
from registration.times import zone

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
# Excel has no time zones: each time is written as the wall clock of its column's zone.
TIME_FORMAT = "yyyy-mm-dd hh:mm"
TIME_WIDTH = len("2025-07-20 09:00")
# Widths in characters of Excel's default font: a margin beside the longest value, room for
# the autofilter's button beside a heading, and a cap so one long title can't push the other
# columns off the screen (a longer cell is cut on screen, never in its value).
MARGIN = 2
FILTER_BUTTON = 3
MAX_WIDTH = 50
SESSION_ZONE = "Session time zone"

# What a sheet column shows of a record: a text, the name of a code, a time in UTC or in the
# session's zone, or the session's zone itself.
TEXT, LABEL, UTC_TIME, SESSION_TIME, ZONE = "text", "label", "utc", "session", "zone"


@dataclass
class SheetColumn:
    """One column of the sheet: its heading, what it shows, and of which record field."""

    heading: str
    shows: str
    index: int
    labels: dict[str, str] | None = None
    width: int = 0


def xlsx_text(value: Any) -> str:
    """The value as text an XLSX cell can hold, anything it can't escaped as Excel does."""
    text = "" if value is None else str(value)
    return XLSX_ESCAPE.sub(lambda match: f"_x{ord(match.group()):04X}_", text)


def attendees_xlsx(event: Event | None = None, status: str | None = None) -> IO[bytes]:
    """The attendee export as an XLSX workbook in a rewound temporary file the caller closes."""
    file = tempfile.SpooledTemporaryFile(max_size=XLSX_SPOOL_BYTES, suffix=".xlsx")
    try:
        columns = _sheet_columns()
        # Widths go into the sheet before its first row, so the rows are read twice: once to
        # measure them, once to write them (memory stays bounded either way).
        zones = _measure(columns, attendee_records(event, status))
        _fit_headings(columns, zones)
        _write_sheet(columns, attendee_records(event, status), file)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return file


def _sheet_columns() -> list[SheetColumn]:
    """The sheet's columns from the export's: two for a time (UTC, the session's zone), two
    for a code (the code, its English name), the session's zone before the first time."""
    columns = []
    for index, column in enumerate(COLUMNS):
        if column.is_time:
            if not any(sheet.shows == ZONE for sheet in columns):
                # The zone the session-time columns are in, for an export of several sessions.
                columns.append(SheetColumn(SESSION_ZONE, ZONE, len(COLUMNS)))
            columns.append(SheetColumn(f"{column.heading} (UTC)", UTC_TIME, index))
            columns.append(SheetColumn(column.heading, SESSION_TIME, index))
        elif column.labels is not None:
            columns.append(SheetColumn(column.heading, TEXT, index))
            # English, as the rest of the console: the names are the same whoever downloads.
            with force_locale("en"):
                labels = {str(code): str(name) for code, name in column.labels().items()}
            columns.append(SheetColumn(column.label_heading, LABEL, index, labels))
        else:
            columns.append(SheetColumn(column.heading, TEXT, index))
    return columns


def display_width(text: str) -> int:
    """How many characters of Excel's default font the text takes on its longest line: a wide
    (CJK) character counts as two."""
    if text.isascii():
        return max(len(line) for line in text.split("\n"))
    return max(sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)
               for line in text.split("\n"))


def _measure(columns: list[SheetColumn], records: Iterable[Sequence]) -> set[str]:
    """Set each column's width from its longest value; return the sessions' time zones."""
    zones = set()
    shown = [(column, column.index) for column in columns if column.shows in (TEXT, LABEL)]
    for column in columns:
        column.width = TIME_WIDTH if column.shows in (UTC_TIME, SESSION_TIME) else 0
    for record in records:
        zones.add(record[-1])
        for column, index in shown:
            value = record[index]
            if value is None:
                continue
            if column.labels is not None:
                value = column.labels.get(value, "")
            text = value if value.__class__ is str else str(value)
            # Most values are too short to matter: no text is wider than twice its length.
            if column.width < MAX_WIDTH and 2 * len(text) > column.width:
                column.width = max(column.width, display_width(text))
    for column in columns:
        if column.shows == ZONE:
            column.width = max(map(len, zones), default=0)
    return zones


def _fit_headings(columns: list[SheetColumn], zones: set[str]) -> None:
    """Name the session's zone in the session-time headings when every row shares it, and fit
    each width to its heading too."""
    for column in columns:
        if column.shows == SESSION_TIME:
            column.heading += (f" (session time, {next(iter(zones))})" if len(zones) == 1
                               else " (session time)")
        column.width = min(MAX_WIDTH, max(column.width + MARGIN,
                                          display_width(column.heading) + FILTER_BUTTON))


def _write_sheet(columns: list[SheetColumn], records: Iterable[Sequence],
                 file: IO[bytes]) -> None:
    """Write the sheet: the bold frozen header, a row per record, the autofilter over them."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Attendees")
    sheet.freeze_panes = "A2"
    for number, column in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(number)].width = column.width
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = _text_cell(sheet, column.heading, always=True)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    # One styled cell per time column, its value replaced row by row: a write-only sheet
    # writes each row as it is appended, and a new styled cell per time cost a third more.
    time_cells = {}
    for number, column in enumerate(columns):
        if column.shows in (UTC_TIME, SESSION_TIME):
            time_cells[number] = WriteOnlyCell(sheet)
            time_cells[number].number_format = TIME_FORMAT
    rows = 0
    for record in records:
        sheet.append(_row(sheet, columns, time_cells, record))
        rows += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{rows + 1}"
    workbook.save(file)


def _row(sheet, columns: list[SheetColumn], time_cells: dict, record: Sequence) -> list:
    session_zone = zone(record[-1])
    row = []
    for number, column in enumerate(columns):
        value = record[column.index]
        shows = column.shows
        if shows in (UTC_TIME, SESSION_TIME):
            row.append(_time_cell(time_cells[number], value, session_zone if shows ==
                                  SESSION_TIME else None))
        elif shows == LABEL:
            row.append(None if value is None else _text_cell(sheet, column.labels.get(value)))
        else:
            row.append(_text_cell(sheet, value))
    return row


def _time_cell(cell: Cell, moment: datetime | None,
               session_zone: ZoneInfo | None) -> Cell | None:
    if moment is None:
        return None
    if session_zone is not None:
        moment = moment.astimezone(session_zone)
    # Naive, to the second: the wall clock of the column's zone, cut as the CSV's times are.
    cell.value = moment.replace(tzinfo=None, microsecond=0)
    return cell


def _text_cell(sheet, value: Any, always: bool = False) -> str | Cell | None:
    text = xlsx_text(value)
    if not text and not always:
        return None  # no cell at all: it reads back empty, as in the CSV
    if always or text.startswith("=") or text in ERROR_CODES:
        # openpyxl makes a formula of "=…" and an error of "#N/A": say it is text.
        cell = WriteOnlyCell(sheet, text)
        cell.data_type = "s"
        return cell
    return text  # openpyxl stores any other str as a string cell
