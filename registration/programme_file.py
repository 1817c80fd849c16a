"""Reading a programme file: CSV records checked row by row, all of them or none, and every
problem on the line a spreadsheet shows."""

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from registration.programme_export import as_written
from registration.programme_rules import COLUMNS, REQUIRED, StoredEvent, check_event, quoted

MAX_FILE_BYTES = 5 * 1024 * 1024
# Enough to fix a file by; a file bad on every line would otherwise answer with its own size.
MAX_PROBLEMS = 100


class Problem(NamedTuple):
    """Something to fix in the file, at its line as a spreadsheet numbers rows (header = 1)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class Problems(list[Problem]):
    """The first MAX_PROBLEMS problems found, in line order, and how many `more` there were."""

    def __init__(self, problems: Iterable[Problem] = ()):
        super().__init__()
        self.more = 0
        self.add_all(problems)

    def add(self, problem: Problem) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(problem)
        else:
            self.more += 1

    def add_all(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    @property
    def total(self) -> int:
        return len(self) + self.more


@dataclass(frozen=True)
class ProgrammeRow:
    """One checked event from the file: its slug and the values of the columns the file has."""

    line: int
    slug: str
    values: dict[str, Any]


def parse_programme(
    data: bytes, stored: Mapping[str, StoredEvent] | None = None, *, max_rows: int | None = None
) -> tuple[list[ProgrammeRow], Problems]:
    """Check a programme CSV; return its rows and no problems, or no rows and its problems
    (the first MAX_PROBLEMS, and how many more).

    `stored` (slug -> StoredEvent, see `stored_events`) lets the checks know existing events:
    their zone reads the times of a file without a timezone column, and a cancelled one can't
    be scheduled again. A file of more than `max_rows` events is refused before any is checked.
    """
    stored = stored or {}
    if len(data) > MAX_FILE_BYTES:
        return [], Problems([Problem(1, f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024}"
                                        " MB; a programme is far smaller: is it the right file?")])
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return [], Problems([Problem(1, "the file is UTF-16 text; save it as "
                                        "'CSV UTF-8 (comma delimited)'")])
    # Undecodable bytes become lone surrogates, reported on their row with every other problem.
    text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    if max_rows is not None and _has_more_rows(text, max_rows):
        return [], Problems([Problem(1, f"the file has more than {max_rows} rows of events; a "
                                        "programme is far smaller: is it the right file? (The "
                                        "limit is the PROGRAMME_MAX_ROWS setting.)")])

    problems = Problems()
    records = _records(text, problems)
    first = next(records, None)
    if first is None:
        return [], problems or Problems([Problem(1, _empty_file())])
    columns = _check_header(first[1], problems)
    if columns is None:
        return [], problems

    rows = []
    first_line_of: dict[str, int] = {}
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets leave empty rows behind; they mean nothing
        if len(cells) != len(columns):
            problems.add(Problem(line, f"has {len(cells)} values, but the header names "
                                          f"{len(columns)} columns"))
            continue
        if any(_undecodable(cell) for cell in cells):
            problems.add(Problem(line, "is not UTF-8 text; save the file as "
                                          "'CSV UTF-8 (comma delimited)'"))
            continue
        # The ' the programme's download puts before a formula-like value is not the value's.
        cells_by_column = {name: as_written(cell)
                           for name, cell in zip(columns, cells, strict=True) if name}
        slug = cells_by_column.get("slug", "").strip()
        if slug in first_line_of:
            problems.add(Problem(line, f"slug {quoted(slug)} is already on line "
                                          f"{first_line_of[slug]}; each event appears once"))
        elif slug:
            first_line_of[slug] = line
        row, row_problems = _check_row(line, cells_by_column, stored)
        problems.add_all(row_problems)
        if row is not None:
            rows.append(row)
    if problems:
        return [], problems  # found line by line, so in line order
    return rows, problems


def _has_more_rows(text: str, max_rows: int) -> bool:
    """Whether the file has more than max_rows non-empty records after its header; read
    without checking them, so an oversized file is refused at once."""
    records = csv.reader(io.StringIO(text, newline=""))
    next(records, None)
    count = 0
    try:
        for cells in records:
            if any(cell.strip() for cell in cells):
                count += 1
                if count > max_rows:
                    return True
    except csv.Error:
        pass  # reported with its line by the checks
    return False


def _empty_file() -> str:
    return f"the file is empty; its first line must name the columns, e.g. {','.join(REQUIRED)}"


def _records(text: str, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with its spreadsheet row number; a quoted value may span text lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 0
    while True:
        line += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader can't find its way back into the file, so nothing after this is checked.
            problems.add(Problem(line, _csv_error(str(exc))))
            return
        yield line, cells


def _csv_error(detail: str) -> str:
    if "end of data" in detail:
        return 'a quoted value is never closed (a " is missing); nothing after it was checked'
    if "field limit" in detail:
        return "a value is far too long; nothing after it was checked"
    return f'the quotes are broken here ({detail}); nothing after it was checked'


def _undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _check_header(cells: list[str], problems: Problems) -> list[str] | None:
    """The known column of each position ("" for a bad one), or None if rows can't be read."""
    if _undecodable("".join(cells)):
        problems.add(Problem(1, "is not UTF-8 text; save the file as "
                                   "'CSV UTF-8 (comma delimited)'"))
        return None
    names = [cell.strip().lower() for cell in cells]
    if not any(names):
        problems.add(Problem(1, _empty_file()))
        return None
    if len(names) == 1 and ";" in names[0]:
        problems.add(Problem(1, "the columns are separated by semicolons; save the file as "
                                   "CSV with commas ('CSV UTF-8 (comma delimited)')"))
        return None
    columns = []
    for position, name in enumerate(names, start=1):
        if not name:
            problems.add(Problem(1, f"column {position} has no name"))
            name = ""
        elif name not in COLUMNS:
            problems.add(Problem(1, f"unknown column {quoted(cells[position - 1])}; "
                                       f"the columns are {', '.join(COLUMNS)}"))
            name = ""
        elif name in columns:
            problems.add(Problem(1, f"column {name} appears twice"))
            name = ""
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        problems.add(Problem(1, f"required column missing: {', '.join(missing)}"))
    return columns


def _check_row(
    line: int, cells: dict[str, str], stored: Mapping[str, StoredEvent]
) -> tuple[ProgrammeRow | None, list[Problem]]:
    """The row's checked values, or its problems (every one of them)."""
    values, problems = check_event(cells, stored)
    slug = values.pop("slug", None)
    if problems or slug is None:
        return None, [Problem(line, message) for _, message in problems]
    return ProgrammeRow(line, slug, values), []
