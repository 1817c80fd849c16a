"""Times for people: a UTC instant shown in someone's zone, with the zone named in words."""

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_datetime, format_time
from flask import current_app

PATTERNS = {
    "en": ("EEEE d MMMM y, HH:mm", "HH:mm"),
    "ja": ("y年M月d日(E) H:mm", "H:mm"),
}


def now() -> datetime:
    """The app's clock (a setting, so tests and `--now` runs can fix the time): for the edges
    of the app, its views and commands; everything below them takes `now` as a parameter."""
    return current_app.config["CLOCK"]()


# Names that stand for the host's own zone, not a place.
HOST_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """Every IANA zone name this machine knows that names a place."""
    return frozenset(available_timezones()) - HOST_ZONES


def is_zone(name: str) -> bool:
    return name in zone_names()


def zone(name: str) -> ZoneInfo:
    """The zone by name, UTC for an unknown one (stored names were validated on the way in)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_when(
    starts_at: datetime, ends_at: datetime | None, tz: str, language: str = "en"
) -> str:
    """'Tuesday 1 July 2025, 14:00–15:30 Central European Summer Time', in the person's zone."""
    locale = language if language in PATTERNS else "en"
    date_pattern, time_pattern = PATTERNS[locale]
    tzinfo = zone(tz)
    local_start = starts_at.astimezone(tzinfo)
    text = format_datetime(starts_at, date_pattern, tzinfo=tzinfo, locale=locale)
    if ends_at is not None:
        local_end = ends_at.astimezone(tzinfo)
        if local_end.date() == local_start.date():
            text += "–" + format_time(ends_at, time_pattern, tzinfo=tzinfo, locale=locale)
        else:
            text += " – " + format_datetime(ends_at, date_pattern, tzinfo=tzinfo, locale=locale)
    zone_words = format_datetime(starts_at, "zzzz", tzinfo=tzinfo, locale=locale)
    return f"{text} {zone_words}" if locale == "en" else f"{text}（{zone_words}）"


def utc_iso(moment: datetime) -> str:
    """The instant as ISO 8601 in UTC with a Z, for machines (and the browser's Intl API)."""
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
