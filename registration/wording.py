"""Words the attendee pages build from settings rather than hold: when reminders come."""

from datetime import datetime

from babel.lists import format_list
from flask_babel import get_locale, ngettext

from notifications import planner
from registration.models import Event


def _duration(label: str) -> str:
    count, unit = int(label[:-1]), label[-1]
    if unit == "d":
        return ngettext("%(num)d day", "%(num)d days", count)
    if unit == "h":
        return ngettext("%(num)d hour", "%(num)d hours", count)
    return ngettext("%(num)d minute", "%(num)d minutes", count)


def reminder_offsets(event: Event, offsets: tuple[planner.Offset, ...], now: datetime) -> str:
    """The reminders a seat taken now would get, as words in the page's language ("7 days,
    1 day, and 1 hour"; ja 7日、1日、1時間); empty when none is still ahead of `now`."""
    ahead = [slot.offset.label for slot in planner.reminder_slots(event.starts_at, offsets, now)]
    return format_list([_duration(label) for label in ahead], locale=get_locale()) if ahead else ""
