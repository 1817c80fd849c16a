"""Times in the console: every moment and session shown in the signed-in organiser's own zone,
with the zone named, and a session's own time beside it where its clocks read otherwise."""

from datetime import datetime

from babel.dates import format_datetime
from flask import g
from flask_babel import gettext as _
from markupsafe import Markup

from registration import times
from registration.forms import zone_long_name

# The console is English only (registration.language fixes its locale), so its times are too.
LANGUAGE = "en"
# Short, for tables: 'Wed 14 Jul 2027, 14:30'.
MOMENT_PATTERN = "EEE d MMM y, HH:mm"
TIME_PATTERN = "HH:mm"


def organiser_zone() -> str:
    """The signed-in organiser's zone (UTC outside a signed-in request)."""
    organiser = g.get("organiser")
    return organiser.timezone if organiser is not None else "UTC"


def zone_label(name: str, year: int | None = None) -> str:
    """A zone by its ID and its name for the year (this one by default): 'Asia/Tokyo — Japan
    Standard Time', 'Europe/Berlin — Central European Time'."""
    year = year or times.now().year
    return f"{name} — {zone_long_name(times.zone(name), year, LANGUAGE)}"


def _named(when: str, moment: datetime, tz: str) -> str:
    return times.when_words(LANGUAGE)["zone"] % {
        "when": when, "zone": times.zone_words(moment, tz, LANGUAGE)}


def console_time(moment: datetime | None, seconds: bool = False) -> str:
    """A moment in the organiser's zone, named: 'Wed 14 Jul 2027, 14:30 India Standard Time'."""
    if moment is None:
        return ""
    tz = organiser_zone()
    pattern = MOMENT_PATTERN + (":ss" if seconds else "")
    return _named(format_datetime(moment, pattern, tzinfo=times.zone(tz), locale=LANGUAGE),
                  moment, tz)


def console_span(first: datetime, last: datetime) -> str:
    """Two moments in the organiser's zone (when a batch of emails went out), the day and the
    zone written once where they are the same: 'Fri 20 Jun 2025, 07:00–09:30 …'."""
    if console_time(first) == console_time(last):
        return console_time(first)
    tz = organiser_zone()
    tzinfo = times.zone(tz)
    same_day = first.astimezone(tzinfo).date() == last.astimezone(tzinfo).date()
    same_zone = times.zone_words(first, tz, LANGUAGE) == times.zone_words(last, tz, LANGUAGE)
    if not (same_day and same_zone):
        return f"{console_time(first)} – {console_time(last)}"
    end = format_datetime(last, TIME_PATTERN, tzinfo=tzinfo, locale=LANGUAGE)
    start = format_datetime(first, MOMENT_PATTERN, tzinfo=tzinfo, locale=LANGUAGE)
    return _named(times.when_words(LANGUAGE)["range"] % {"start": start, "end": end}, first, tz)


def console_when(starts_at: datetime, ends_at: datetime | None,
                 session_zone: str | None) -> Markup:
    """A session in the organiser's zone, named, and, where the session's zone reads otherwise,
    its own time there: 'Wednesday 14 July 2027, 14:30–16:00 India Standard Time (18:00–19:30
    in Tokyo)'. The rules of localtime.js, which does the same for attendees in the browser.
    No `session_zone`: the organiser's time alone."""
    tz = organiser_zone()
    here = times.format_when(starts_at, ends_at, tz, LANGUAGE)
    same = session_zone is None or all(times.same_wall_time(moment, tz, session_zone)
               for moment in (starts_at, ends_at) if moment is not None)
    if same:
        return Markup('<span class="when-here">%s</span>') % here
    tzinfo, session_tzinfo = times.zone(tz), times.zone(session_zone)
    same_day = starts_at.astimezone(tzinfo).date() == starts_at.astimezone(session_tzinfo).date()
    there = times.format_there(starts_at, ends_at, session_zone, with_date=not same_day,
                               language=LANGUAGE)
    # TRANSLATORS: beside a session's time in the organiser's zone, its time where it is held.
    beside = _("(%(there)s)", there=there)
    return Markup('<span class="when-here">%s</span> <span class="when-there">%s</span>') % (
        here, beside)


def register(bp) -> None:
    """Make the console's time helpers available to every template: the console's pages are
    rendered by three blueprints."""
    bp.add_app_template_filter(console_time)
    for helper in (console_span, console_when, organiser_zone, zone_label):
        bp.add_app_template_global(helper)
