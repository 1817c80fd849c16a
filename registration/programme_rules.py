"""One event's cells checked by the programme's rules: a row of a programme file, or the
organiser console's event form, so that both accept the same events."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from registration import changes
from registration.models import EventKind, EventStatus, Language, Pillar
from registration.text import LINE_BREAKS, clean_text, first_control
from registration.times import zone, zone_names

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
MAX_LENGTHS = {
    "slug": 80, "title": 200, "location": 200, "join_url": 2000, "recording_url": 2000,
    "description": 10_000,
}
MAX_CAPACITY = 1_000_000
# Years outside this range are typos, and would overflow when converted across zones.
YEARS = range(2000, 2101)
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class StoredEvent:
    """What the checks need to know of an event already in the programme."""

    timezone: str
    status: str


class _Bad(ValueError):
    """One cell's problem, in words for the person who wrote the file."""


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
        problems.append(("ends_at", f"ends_at {quoted(cells['ends_at'])} is not after "
                                    f"starts_at {quoted(cells['starts_at'])}"))
    reopening = known and changes.reopen_refusal(slug, known.status, values.get("status"))
    if reopening:
        problems.append(("status", reopening))
    return values, problems


def quoted(value: str, limit: int = 40) -> str:
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
        raise _Bad(f"slug {quoted(slug)} must be lowercase letters, digits and single hyphens, "
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
            raise _Bad(f"{name} must be {', '.join(choices)}{blank}, not {quoted(cell.strip())}")
        return value

    return check


def _capacity(name: str, cell: str) -> int | None:
    text = cell.strip()
    if not text:
        return None  # no cap
    if not text.isascii() or not text.isdigit() or int(text) > MAX_CAPACITY:
        raise _Bad(f"capacity must be a whole number of seats from 0 to {MAX_CAPACITY} "
                   f"(blank for no limit), not {quoted(text)}")
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
                   f"not {quoted(text)}{hint}")
    return zone_name


def _url(name: str, cell: str) -> str | None:
    text = _text(name, cell)
    if not text:
        return None
    wrong = _Bad(f"{name} must be a full http:// or https:// address, not {quoted(text)}")
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
        raise _Bad(f"{name} {quoted(text)} has a date but no time; write it like "
                   f"{text}T14:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(f"{name} must be an ISO 8601 date and time like 2026-07-01T14:00 "
                   f"(or 2026-07-01 14:00+02:00), not {quoted(text)}") from None
    if moment.year not in YEARS:
        raise _Bad(f"{name} {quoted(text)} is in the year {moment.year}; is that a typo?")
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


def wall_clock(moment: datetime, zone_name: str) -> str:
    """A UTC moment as a cell holds it: the wall clock of the zone, as _in_zone reads it back;
    with its offset when that wall time happens twice (the night the clocks go back)."""
    tzinfo = zone(zone_name)
    local = moment.astimezone(tzinfo)
    naive = local.replace(tzinfo=None)
    spec = "minutes" if not (local.second or local.microsecond) else "auto"
    if naive.replace(tzinfo=tzinfo, fold=0).utcoffset() != naive.replace(
        tzinfo=tzinfo, fold=1
    ).utcoffset():
        return local.isoformat(timespec=spec)
    return naive.isoformat(timespec=spec)


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
