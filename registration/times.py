"""Times for people: a UTC instant shown in someone's zone, with the zone named in words; the
patterns and words the server uses are handed to the browser (localtime.js) with each time."""

import json
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_datetime, get_timezone_location
from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _

# CLDR date patterns, one per language, read by Babel here and by localtime.js in the browser.
# ja: CLDR's own skeletons yMMMEd and Hm ("2027年7月14日(水)", "0:30"). en: CLDR's full date
# without the comma after the weekday, and the 24-hour clock, as the programme is announced.
PATTERNS = {
    "en": {"date": "EEEE d MMMM y", "time": "HH:mm", "month": "MMMM y"},
    "ja": {"date": "y年M月d日(E)", "time": "H:mm", "month": "y年M月"},
}
DEFAULT_LANGUAGE = "en"


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


def language_of(language: str | None = None) -> str:
    """The language to write in: the one given, else the page's or email's (Flask-Babel's
    locale; emails are rendered inside force_locale), English when neither is known."""
    if language is None:
        locale = get_locale()
        language = locale.language if locale is not None else DEFAULT_LANGUAGE
    return language if language in PATTERNS else DEFAULT_LANGUAGE


@lru_cache(maxsize=len(PATTERNS))
def when_words(language: str) -> dict[str, str]:
    """The words that join dates, times and zones, as %(name)s templates: the server fills
    them in format_when, the browser in localtime.js, so both write a time the same way.
    Read once per language (the catalogues don't change while the app runs): force_locale
    costs about a millisecond, and a page listing sessions asks twice per time shown."""
    with force_locale(language):
        return {
            # TRANSLATORS: a session's start and end times on one day, e.g. 10:00–11:30.
            "range": _("%(start)s–%(end)s"),
            # TRANSLATORS: a session that ends on the next day, e.g. 23:00–00:30 (+1 day).
            "next_day": _("%(start)s–%(end)s (+1 day)"),
            # TRANSLATORS: a session over several days: a date and time, then another.
            "span": _("%(start)s – %(end)s"),
            # TRANSLATORS: a date, then a time or times: "Wednesday 14 July 2027, 10:00–11:30".
            "day": _("%(date)s, %(time)s"),
            # TRANSLATORS: a time, then its time zone in words: "…10:00 Japan Standard Time".
            "zone": _("%(when)s %(zone)s"),
            # TRANSLATORS: shown by the browser: the time where the visitor is.
            "yours": _("%(when)s (your time)"),
            # TRANSLATORS: shown by the browser beside the visitor's time: the session's own
            # time where it is held, e.g. "03:00–04:30 in Berlin".
            "there": _("%(when)s in %(city)s"),
        }


def zone_words(moment: datetime, tz: str, language: str) -> str:
    """The zone at that moment in words ("Japan Standard Time", 日本標準時); Babel writes a GMT
    offset ("GMT-05:00") for a zone CLDR has no name for, never the zone's ID."""
    return format_datetime(moment, "zzzz", tzinfo=zone(tz), locale=language)


def city(moment: datetime, tz: str, language: str) -> str:
    """Where a zone's clocks are, in words ("Berlin", ベルリン); the zone in words for a zone
    that names no place (Etc/GMT+5, whose CLDR city "GMT+5" has the sign the wrong way round)."""
    name = get_timezone_location(zone(tz), locale=language, return_city=True)
    if tz.startswith("Etc/") or name == tz:
        return zone_words(moment, tz, language)
    return name


def _times(starts_at: datetime, ends_at: datetime | None, tz: str, language: str,
           words: dict[str, str], with_date: bool = True) -> str:
    """The date and times without the zone: one day, the next day marked, or two full dates;
    without `with_date`, the times alone for a session that ends by the next day."""
    tzinfo = zone(tz)
    pattern = PATTERNS[language]

    def date(moment: datetime) -> str:
        return format_datetime(moment, pattern["date"], tzinfo=tzinfo, locale=language)

    def time(moment: datetime) -> str:
        return format_datetime(moment, pattern["time"], tzinfo=tzinfo, locale=language)

    start = time(starts_at)
    if ends_at is None:
        return words["day"] % {"date": date(starts_at), "time": start} if with_date else start
    days = (ends_at.astimezone(tzinfo).date() - starts_at.astimezone(tzinfo).date()).days
    if days > 1:
        return words["span"] % {
            "start": words["day"] % {"date": date(starts_at), "time": start},
            "end": words["day"] % {"date": date(ends_at), "time": time(ends_at)},
        }
    times = words["next_day" if days == 1 else "range"] % {"start": start, "end": time(ends_at)}
    return words["day"] % {"date": date(starts_at), "time": times} if with_date else times


def format_when(
    starts_at: datetime, ends_at: datetime | None, tz: str, language: str | None = None
) -> str:
    """'Wednesday 14 July 2027, 10:00–11:30 Japan Standard Time' / '2027年7月14日(水)
    10:00〜11:30 日本標準時', in the zone `tz`; `language` None: the page's or email's."""
    language = language_of(language)
    words = when_words(language)
    return words["zone"] % {
        "when": _times(starts_at, ends_at, tz, language, words),
        "zone": zone_words(starts_at, tz, language),
    }


def format_there(starts_at: datetime, ends_at: datetime | None, tz: str, *, with_date: bool,
                 language: str | None = None) -> str:
    """A session's own time where it is held, as localtime.js writes it beside the visitor's:
    '10:00–11:30 in Tokyo', with the date first when `with_date`."""
    language = language_of(language)
    words = when_words(language)
    return words["there"] % {
        "when": _times(starts_at, ends_at, tz, language, words, with_date),
        "city": city(starts_at, tz, language),
    }


def same_wall_time(moment: datetime, tz: str, other_tz: str) -> bool:
    """Whether two zones' clocks read the same at that moment (Paris and Berlin do)."""
    return moment.astimezone(zone(tz)).utcoffset() == moment.astimezone(zone(other_tz)).utcoffset()


def format_month(moment: datetime, tz: str, language: str | None = None) -> str:
    """The month of a moment in a zone, for a heading: 'July 2027' / '2027年7月'."""
    language = language_of(language)
    return format_datetime(moment, PATTERNS[language]["month"], tzinfo=zone(tz), locale=language)


def when_data(starts_at: datetime, tz: str, language: str | None = None) -> dict[str, str]:
    """What localtime.js needs to write a session's time where the visitor is, in the words
    of the page (it has no catalogue of its own): the `data-*` attributes of a `<time>`."""
    language = language_of(language)
    return {
        "zone": tz,
        "city": city(starts_at, tz, language),
        "patterns": json.dumps({part: PATTERNS[language][part] for part in ("date", "time")},
                               ensure_ascii=False),
        "words": json.dumps(when_words(language), ensure_ascii=False),
    }


def utc_iso(moment: datetime) -> str:
    """The instant as ISO 8601 in UTC with a Z, for machines (and the browser's Intl API)."""
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
