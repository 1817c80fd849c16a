"""The upload's preview in words: each field a row changes, by its label, with the stored value
and the file's, and whom applying it will email, and with what."""

from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from flask_babel import gettext as _
from flask_babel import ngettext

from organisers.clock import LANGUAGE, MOMENT_PATTERN, TIME_PATTERN
from organisers.forms import COLUMN_LABELS, EventForm
from registration.programme import FieldChange, PlannedChange
from registration.times import zone, zone_words

# A description is told apart by its start; the whole of it is in the file.
SHOWN_CHARS = 80
CHOICE_LABELS = {name: dict(choices) for name, choices in EventForm.CHOICES.items()}


def field_changes(plan: PlannedChange) -> list[tuple[str, str, str]]:
    """(label, stored value, the file's value) of each field the row changes, as people read
    them: times on the wall clock of the event's zone (before and after), the zone named."""
    shown = []
    for change in plan.changes:
        if change.name in ("starts_at", "ends_at"):
            old, new = _times(change, plan.old_timezone or plan.timezone, plan.timezone)
        else:
            old, new = _value(change.name, change.old), _value(change.name, change.new)
        shown.append((str(COLUMN_LABELS[change.name]), old, new))
    return shown


def _times(change: FieldChange, old_zone: str, new_zone: str) -> tuple[str, str]:
    """'Sun 20 Jul 2025, 10:00' → '11:00 Central European Summer Time': the new date only
    when it differs, the zone once when both are in the same one."""
    old_local = change.old.astimezone(zone(old_zone))
    new_local = change.new.astimezone(zone(new_zone))
    same_zone = old_zone == new_zone
    old_text = _moment(change.old, old_zone, MOMENT_PATTERN)
    same_day = same_zone and old_local.date() == new_local.date()
    new_text = _moment(change.new, new_zone, TIME_PATTERN if same_day else MOMENT_PATTERN)
    new_text = _("%(when)s %(zone)s", when=new_text,
                 zone=zone_words(change.new, new_zone, LANGUAGE))
    if not same_zone:
        old_text = _("%(when)s %(zone)s", when=old_text,
                     zone=zone_words(change.old, old_zone, LANGUAGE))
    return old_text, new_text


def _moment(moment: datetime, zone_name: str, pattern: str) -> str:
    return format_datetime(moment, pattern, tzinfo=zone(zone_name), locale=LANGUAGE)


def _value(name: str, value: Any) -> str:
    if name == "capacity" and value is None:
        return _("no limit")
    if value is None or value == "":
        return _("(none)")
    if name in CHOICE_LABELS:
        return str(CHOICE_LABELS[name].get(value, value))
    text = " ".join(str(value).split())  # a description's lines, run together
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS].rstrip() + "…"


def who_is_told(plan: PlannedChange) -> list[str]:
    """What applying the row sends, and to how many, as the change service will send it."""
    seats, waiting = plan.told - plan.told_waiting, plan.told_waiting
    lines = []
    if plan.action == "cancel":
        if seats:
            lines.append(ngettext(
                "%(num)d seat holder will get a cancellation that removes the session from "
                "their calendar.",
                "%(num)d seat holders will get a cancellation that removes the session from "
                "their calendars.", seats))
        if waiting:
            lines.append(ngettext("%(num)d on the waiting list will get a cancellation email.",
                                  "%(num)d on the waiting list will get a cancellation email.",
                                  waiting))
    else:
        if seats:
            lines.append(ngettext("%(num)d seat holder will get an updated invite.",
                                  "%(num)d seat holders will get an updated invite.", seats))
        if waiting:
            # Only a new time reaches the waiting list, and without an invite: no seat yet.
            lines.append(ngettext("%(num)d on the waiting list will get an email with the new "
                                  "time.",
                                  "%(num)d on the waiting list will get an email with the new "
                                  "time.", waiting))
    if plan.promoted:
        lines.append(ngettext("%(num)d on the waiting list will get a seat and their invite.",
                              "%(num)d on the waiting list will get a seat and their invite.",
                              plan.promoted))
    if plan.follow_ups:
        lines.append(ngettext("%(num)d seat holder will get the recording link.",
                              "%(num)d seat holders will get the recording link.",
                              plan.follow_ups))
    return lines or [_("Nobody will be emailed.")]
