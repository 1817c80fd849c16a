"""The programme from CSV: check a file (all rows or none), then create or update events by slug.

`parse_programme` is pure and answers rows or problems; `apply_programme` is the service that
writes them. The CLI and the organiser console's upload preview share both.
"""

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from extensions import db
from registration import services
from registration.models import Event, EventKind, EventStatus, Language, Pillar
from registration.text import LINE_BREAKS, clean_text, first_control
from registration.times import zone_names

COLUMNS = (
    "slug", "title", "kind", "pillar", "starts_at", "ends_at", "timezone", "capacity",
    "language", "join_url", "location", "description", "status", "recording_url",
)
REQUIRED = ("slug", "title", "starts_at", "ends_at")
# What a new event gets for a column the file leaves out, and any event for a blank cell.
DEFAULTS: dict[str, Any] = {
    "kind": EventKind.WEBINAR,
    "pillar": None,
    "timezone": "UTC",
    "capacity": None,
    "language": Language.EN,
    "join_url": None,
    "location": None,
    "description": "",
    "status": EventStatus.SCHEDULED,
    "recording_url": None,
}
# "new" would shadow the organiser console's /events/new.
RESERVED_SLUGS = frozenset({"new"})
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_LENGTHS = {
    "slug": 80, "title": 200, "location": 200, "join_url": 2000, "recording_url": 2000,
    "description": 10_000,
}
MAX_CAPACITY = 1_000_000
# Years outside this range are typos, and would overflow when converted across zones.
YEARS = range(2000, 2101)
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class Problem(NamedTuple):
    """Something to fix in the file, at its line as a spreadsheet numbers rows (header = 1)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class StoredEvent:
    """What the checks need to know of an event already in the programme."""

    timezone: str
    status: str


@dataclass(frozen=True)
class ProgrammeRow:
    """One checked event from the file: its slug and the values of the columns the file has."""

    line: int
    slug: str
    values: dict[str, Any]


@dataclass
class ImportSummary:
    """What an import did, by slug."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    promoted: int = 0
    notified: int = 0
    plans: list["PlannedChange"] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"created {len(self.created)}, updated {len(self.updated)}, "
                f"unchanged {len(self.unchanged)}")
        if self.notified:
            text += f"; {self.notified} registrants to be told of the changes"
        if self.promoted:
            text += f"; {self.promoted} moved from the waiting list to a seat"
        return text


class ProgrammeRejected(Exception):
    """The rows can't be applied as they stand; `problems` says why, line by line."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class _Bad(ValueError):
    """One cell's problem, in words for the person who wrote the file."""


def parse_programme(
    data: bytes, stored: Mapping[str, StoredEvent] | None = None
) -> tuple[list[ProgrammeRow], list[Problem]]:
    """Check a programme CSV; return its rows and no problems, or no rows and every problem.

    `stored` (slug -> StoredEvent, see `stored_events`) lets the checks know existing events:
    their zone reads the times of a file without a timezone column, and a cancelled one can't
    be scheduled again.
    """
    stored = stored or {}
    if len(data) > MAX_FILE_BYTES:
        return [], [Problem(1, f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB; "
                               "a programme is far smaller: is it the right file?")]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return [], [Problem(1, "the file is UTF-16 text; save it as 'CSV UTF-8 (comma delimited)'")]
    # Undecodable bytes become lone surrogates, reported on their row with every other problem.
    text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")

    problems: list[Problem] = []
    records = _records(text, problems)
    first = next(records, None)
    if first is None:
        return [], problems or [Problem(1, _empty_file())]
    columns = _check_header(first[1], problems)
    if columns is None:
        return [], problems

    rows = []
    first_line_of: dict[str, int] = {}
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets leave empty rows behind; they mean nothing
        if len(cells) != len(columns):
            problems.append(Problem(line, f"has {len(cells)} values, but the header names "
                                          f"{len(columns)} columns"))
            continue
        if any(_undecodable(cell) for cell in cells):
            problems.append(Problem(line, "is not UTF-8 text; save the file as "
                                          "'CSV UTF-8 (comma delimited)'"))
            continue
        cells_by_column = {name: cell for name, cell in zip(columns, cells, strict=True) if name}
        slug = cells_by_column.get("slug", "").strip()
        if slug in first_line_of:
            problems.append(Problem(line, f"slug {_show(slug)} is already on line "
                                          f"{first_line_of[slug]}; each event appears once"))
        elif slug:
            first_line_of[slug] = line
        row, row_problems = _check_row(line, cells_by_column, stored)
        problems.extend(row_problems)
        if row is not None:
            rows.append(row)
    if problems:
        return [], sorted(problems, key=lambda p: p.line)
    return rows, []


def stored_events() -> dict[str, StoredEvent]:
    """What `parse_programme` needs to know of the events already stored, by slug."""
    result = db.session.execute(sa.select(Event.slug, Event.timezone, Event.status))
    return {slug: StoredEvent(timezone, status) for slug, timezone, status in result}


def apply_programme(rows: Sequence[ProgrammeRow], now: datetime) -> ImportSummary:
    """Create or update the events of checked rows by slug; flushes, the caller commits once.

    A column the file leaves out keeps its stored value (a new event takes the default). The
    rows come from `parse_programme(data, stored_events())`, so naive times were read in the
    right zone.

    Raises ProgrammeRejected, having changed nothing, if a row would reopen a cancelled event.
    """
    slugs = [row.slug for row in rows]
    existing = {}
    if slugs:
        existing = {
            event.slug: event
            for event in db.session.scalars(
                sa.select(Event)
                .where(Event.slug.in_(slugs))
                .with_for_update()
                # Locked rows read afresh, not as an earlier query left them in the session.
                .execution_options(populate_existing=True)
            )
        }
    # Checked here, under the lock, all before any change: a file applies whole or not at all.
    refused = [
        Problem(row.line, problem)
        for row in rows
        if row.slug in existing
        and (problem := services.check_change(existing[row.slug], row.values, now))
    ]
    if refused:
        raise ProgrammeRejected(refused)

    summary = ImportSummary()
    for row in rows:
        event = existing.get(row.slug)
        if event is None:
            event = Event(slug=row.slug, **{**DEFAULTS, **row.values}, confirmed_count=0,
                          created_at=now, updated_at=now)
            db.session.add(event)
            summary.created.append(row.slug)
            summary.plans.append(PlannedChange(row.line, row.slug, "create", event.title,
                                               event.starts_at, event.ends_at,
                                               fields=tuple(sorted(row.values))))
            continue
        change = services.change_event(event, row.values, now)
        (summary.updated if change.changed else summary.unchanged).append(row.slug)
        summary.promoted += change.promoted
        summary.notified += change.notified
        summary.plans.append(PlannedChange(
            row.line, row.slug, _action(change, event), event.title, event.starts_at,
            event.ends_at, fields=tuple(change.changed), old_starts_at=change.old_starts_at,
            old_ends_at=change.old_ends_at, told=change.notified, promoted=change.promoted,
            follow_ups=change.follow_ups,
        ))
    db.session.flush()
    return summary


def _action(change: services.EventChange, event: Event) -> str:
    if not change.changed:
        return "unchanged"
    if "status" in change.changed and event.is_cancelled:
        return "cancel"
    if change.old_starts_at is not None:
        return "reschedule"
    return "change"


def preview_programme(rows: Sequence[ProgrammeRow],
                      now: datetime) -> tuple[list["PlannedChange"], list[Problem]]:
    """What `apply_programme` would do with these rows, without doing it: a plan per row, or
    every refusal. Found by applying them in a savepoint and undoing that, so the preview and
    the real thing can never disagree."""
    savepoint = db.session.begin_nested()
    try:
        summary = apply_programme(rows, now)
    except ProgrammeRejected as exc:
        savepoint.rollback()
        return [], exc.problems
    savepoint.rollback()
    return summary.plans, []


@dataclass(frozen=True)
class PlannedChange:
    """What applying one checked row would do, and to how many people, before it is done."""

    line: int
    slug: str
    action: str  # "create", "cancel", "reschedule", "change" or "unchanged"
    title: str
    starts_at: datetime
    ends_at: datetime
    fields: tuple[str, ...] = ()
    old_starts_at: datetime | None = None
    old_ends_at: datetime | None = None
    told: int = 0  # registrants who get an update or a cancellation
    promoted: int = 0  # waiting-list people who get a seat
    follow_ups: int = 0  # seat holders who get the recording link


def _empty_file() -> str:
    return f"the file is empty; its first line must name the columns, e.g. {','.join(REQUIRED)}"


def _records(text: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
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
            problems.append(Problem(line, _csv_error(str(exc))))
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


def _check_header(cells: list[str], problems: list[Problem]) -> list[str] | None:
    """The known column of each position ("" for a bad one), or None if rows can't be read."""
    if _undecodable("".join(cells)):
        problems.append(Problem(1, "is not UTF-8 text; save the file as "
                                   "'CSV UTF-8 (comma delimited)'"))
        return None
    names = [cell.strip().lower() for cell in cells]
    if not any(names):
        problems.append(Problem(1, _empty_file()))
        return None
    if len(names) == 1 and ";" in names[0]:
        problems.append(Problem(1, "the columns are separated by semicolons; save the file as "
                                   "CSV with commas ('CSV UTF-8 (comma delimited)')"))
        return None
    columns = []
    for position, name in enumerate(names, start=1):
        if not name:
            problems.append(Problem(1, f"column {position} has no name"))
            name = ""
        elif name not in COLUMNS:
            problems.append(Problem(1, f"unknown column {_show(cells[position - 1])}; "
                                       f"the columns are {', '.join(COLUMNS)}"))
            name = ""
        elif name in columns:
            problems.append(Problem(1, f"column {name} appears twice"))
            name = ""
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        problems.append(Problem(1, f"required column missing: {', '.join(missing)}"))
    return columns


def check_event(
    cells: Mapping[str, str], stored: Mapping[str, StoredEvent] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One event's cells (a file's row, or the console's form) checked by the programme's rules.

    Returns the values by column (times in UTC) and every problem as (column, message); the
    values are usable only when there is no problem.
    """
    stored = stored or {}
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for name, cell in cells.items():
        try:
            values[name] = CHECKS[name](name, cell)
        except _Bad as exc:
            problems.append((name, str(exc)))
    slug = values.get("slug")  # None: refused, or the column is missing (line 1 says so)
    known = stored.get(slug) if slug is not None else None
    if "timezone" in cells:
        zone_name = values.get("timezone")  # None when the cell was refused
    else:
        zone_name = known.timezone if known is not None else DEFAULTS["timezone"]
    if zone_name is not None:
        for name in ("starts_at", "ends_at"):
            if values.get(name) is not None:
                try:
                    values[name] = _in_zone(name, values[name], zone_name)
                except _Bad as exc:
                    problems.append((name, str(exc)))
                    values[name] = None
    starts_at, ends_at = values.get("starts_at"), values.get("ends_at")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        problems.append(("ends_at", f"ends_at {_show(cells['ends_at'])} is not after "
                                    f"starts_at {_show(cells['starts_at'])}"))
    if (known is not None and known.status == EventStatus.CANCELLED
            and values.get("status") == EventStatus.SCHEDULED):
        problems.append(("status", services.REOPEN_REFUSED.format(slug=slug)))
    return values, problems


def _check_row(
    line: int, cells: dict[str, str], stored: Mapping[str, StoredEvent]
) -> tuple[ProgrammeRow | None, list[Problem]]:
    """The row's checked values, or its problems (every one of them)."""
    values, problems = check_event(cells, stored)
    slug = values.pop("slug", None)
    if problems or slug is None:
        return None, [Problem(line, message) for _, message in problems]
    return ProgrammeRow(line, slug, values), []


def _show(value: str, limit: int = 40) -> str:
    """A value quoted for a message, cut short, with invisible characters made visible."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _text(name: str, cell: str, *, multiline: bool = False) -> str:
    text = clean_text(cell)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    allowed = "\n\t" if multiline else ""
    bad = first_control(text, allowed)
    if bad is not None and bad in LINE_BREAKS:
        raise _Bad(f"{name} contains a line break; keep it on one line")
    if bad is not None:
        raise _Bad(f"{name} contains the invisible control character U+{ord(bad):04X}; "
                   "remove it")
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(text) > limit:
        raise _Bad(f"{name} is {len(text)} characters long; at most {limit} fit")
    return text


def _required_text(name: str, cell: str) -> str:
    text = _text(name, cell)
    if not text:
        raise _Bad(f"{name} is empty; it is required")
    return text


def _optional_text(name: str, cell: str) -> str | None:
    return _text(name, cell) or None


def _description(name: str, cell: str) -> str:
    return _text(name, cell, multiline=True)


def _slug(name: str, cell: str) -> str:
    slug = _required_text(name, cell)
    if not SLUG_RE.fullmatch(slug):
        raise _Bad(f"slug {_show(slug)} must be lowercase letters, digits and single hyphens, "
                   "like climate-finance-101")
    if slug in RESERVED_SLUGS:
        raise _Bad(f"slug {slug} is reserved; choose another")
    return slug


def _choice(choices: Sequence[str], optional: bool = False):
    def check(name: str, cell: str) -> str | None:
        value = cell.strip().lower()
        if not value:
            return DEFAULTS[name]
        if value not in choices:
            blank = " or blank" if optional else f" (blank means {DEFAULTS[name]})"
            raise _Bad(f"{name} must be {', '.join(choices)}{blank}, not {_show(cell.strip())}")
        return value

    return check


def _capacity(name: str, cell: str) -> int | None:
    text = cell.strip()
    if not text:
        return None  # no cap
    if not text.isascii() or not text.isdigit() or int(text) > MAX_CAPACITY:
        raise _Bad(f"capacity must be a whole number of seats from 0 to {MAX_CAPACITY} "
                   f"(blank for no limit), not {_show(text)}")
    return int(text)


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in zone_names()}


def _zone(name: str, cell: str) -> str | None:
    text = cell.strip()
    if not text:
        return DEFAULTS["timezone"]
    zones = _zones_by_folded_name()
    zone_name = zones.get(text.casefold())
    if zone_name is None:
        # "Berlin" or "Tokyo" is a city whose zone we can name.
        near = [name for folded, name in zones.items() if folded.endswith("/" + text.casefold())]
        hint = f" (did you mean {near[0]}?)" if len(near) == 1 else ""
        raise _Bad(f"timezone must be an IANA zone name like Europe/Berlin or Asia/Tokyo, "
                   f"not {_show(text)}{hint}")
    return zone_name


def _url(name: str, cell: str) -> str | None:
    text = _text(name, cell)
    if not text:
        return None
    wrong = _Bad(f"{name} must be a full http:// or https:// address, not {_show(text)}")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError for a port that can't be)
    except ValueError:
        raise wrong from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise wrong
    if any(ch.isspace() for ch in text):
        raise _Bad(f"{name} contains a space; a web address has none")
    return text


def _moment(name: str, cell: str) -> datetime:
    """A date and time as written: naive (wall clock) or with its offset."""
    text = cell.strip()
    if not text:
        raise _Bad(f"{name} is empty; it is required")
    try:
        date.fromisoformat(text)
    except ValueError:
        pass
    else:
        raise _Bad(f"{name} {_show(text)} has a date but no time; write it like "
                   f"{text}T14:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(f"{name} must be an ISO 8601 date and time like 2026-07-01T14:00 "
                   f"(or 2026-07-01 14:00+02:00), not {_show(text)}") from None
    if moment.year not in YEARS:
        raise _Bad(f"{name} {_show(text)} is in the year {moment.year}; is that a typo?")
    return moment


def _in_zone(name: str, moment: datetime, zone_name: str) -> datetime:
    """The UTC instant of a time as written; a wall-clock time the zone skips or repeats is
    refused, never guessed (zoneinfo itself never complains)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)  # an offset in the value wins over the zone
    zone = ZoneInfo(zone_name)
    earlier = moment.replace(tzinfo=zone, fold=0)
    later = moment.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() == later.utcoffset():
        return earlier.astimezone(UTC)
    wall = moment.strftime("%Y-%m-%d %H:%M")
    if earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == moment:
        options = " or ".join(
            moment.replace(tzinfo=zone, fold=fold).isoformat(timespec="minutes")
            for fold in (0, 1)
        )
        raise _Bad(f"{name} {wall} happens twice in {zone_name} (the clocks go back that "
                   f"night); write the offset you mean: {options}")
    raise _Bad(f"{name} {wall} does not exist in {zone_name} (the clocks skip ahead that "
               "night); choose another time")


CHECKS = {
    "slug": _slug,
    "title": _required_text,
    "kind": _choice(tuple(EventKind)),
    "pillar": _choice(tuple(Pillar), optional=True),
    "starts_at": _moment,
    "ends_at": _moment,
    "timezone": _zone,
    "capacity": _capacity,
    "language": _choice(tuple(Language)),
    "join_url": _url,
    "location": _optional_text,
    "description": _description,
    "status": _choice(tuple(EventStatus)),
    "recording_url": _url,
}
