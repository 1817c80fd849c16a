"""Creating and changing events from the console, by the programme importer's rules and through
the same change service, so that people are told alike whichever way a change comes."""

from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy.exc import IntegrityError

from extensions import db
from registration import changes, programme
from registration.models import Event, EventStatus
from registration.programme_export import event_cells

SLUG_RACE = _l("Another event took this slug a moment ago; choose another.")


class EditRefused(Exception):
    """The form must be corrected or confirmed first: problems by field, the answer's status
    and, where one helps, a line for the top of the page. Nothing was stored."""

    def __init__(self, errors: dict[str, list[str]], status: int = 422,
                 error: str | None = None):
        super().__init__(error or "; ".join(str(m) for ms in errors.values() for m in ms))
        self.errors = errors
        self.status = status
        self.error = error


def check_cells(cells: dict[str, str]) -> tuple[dict, dict[str, list[str]]]:
    """The form's text checked by the importer's rules: the values, and the problems by field."""
    values, problems = programme.check_event(cells)
    errors: dict[str, list[str]] = {}
    for name, message in problems:
        errors.setdefault(name, []).append(message)
    return values, errors


def _slug_taken(slug: str, other_than: Event | None = None) -> bool:
    query = sa.select(Event.id).where(Event.slug == slug)
    if other_than is not None:
        query = query.where(Event.id != other_than.id)
    return db.session.scalar(query) is not None


def create_event(cells: dict[str, str], now: datetime) -> tuple[Event, dict]:
    """A new event from the form's text; returns it with its values (flushed, not committed)."""
    values, errors = check_cells(cells)
    if not errors and _slug_taken(values["slug"]):
        errors["slug"] = [_("An event already has the slug %(slug)s; choose another.",
                              slug=values["slug"])]
    if errors:
        raise EditRefused(errors)
    event = Event(**values, confirmed_count=0, created_at=now, updated_at=now)
    try:
        # A savepoint: a slug taken meanwhile is refused, and the request's transaction lives on.
        with db.session.begin_nested():
            db.session.add(event)
            db.session.flush()
    except IntegrityError:
        raise EditRefused({"slug": [SLUG_RACE]}, 409) from None
    return event, values


def duplicate_event(source: Event, slug: str, now: datetime) -> Event:
    """A copy of an event under a new slug, made as the new-event form makes one: its details,
    scheduled, without its recording, registrations or public UID (flushed, not committed)."""
    cells = {**event_cells(source), "slug": slug, "status": EventStatus.SCHEDULED,
             "recording_url": ""}
    event, _values = create_event(cells, now)
    return event


def _refusals(event: Event, values: dict, *, keep_attendees: bool,
              confirm_cancel: bool) -> dict[str, list[str]]:
    """What the form must confirm or correct before this change may go ahead."""
    errors = {}
    if values["slug"] != event.slug and _slug_taken(values["slug"], other_than=event):
        errors["slug"] = [_("Another event has the slug %(slug)s; choose another.",
                              slug=values["slug"])]
    # The change service's own rule, asked first to show it beside the field with the box
    # that accepts it.
    seats = changes.seats_refusal(event, values["capacity"], keep_seats=keep_attendees)
    if seats:
        # `seats` is the change service's own words ("capacity 1 is below the 2 seats…").
        errors["capacity"] = [
            _("The %(seats)s. Tick “keep the existing attendees” to lower it anyway (nobody "
              "loses a seat), or choose at least that many.", seats=seats)
        ]
    if values["status"] == EventStatus.CANCELLED and not event.is_cancelled and not confirm_cancel:
        errors["confirm_cancel"] = [
            _("Cancelling notifies every registrant and can't be undone: tick the box to "
              "confirm. Nothing was changed.")
        ]
    return errors


def change_event(event: Event, cells: dict[str, str], now: datetime, *,
                 keep_attendees: bool, confirm_cancel: bool) -> changes.EventChange:
    """Change a (locked) event to the form's text, or refuse with every problem by field; a
    refused change leaves the event and the transaction as they were."""
    values, errors = check_cells(cells)
    if not errors:
        errors = _refusals(event, values, keep_attendees=keep_attendees,
                           confirm_cancel=confirm_cancel)
    if errors:
        raise EditRefused(errors, 409 if "confirm_cancel" in errors else 422)
    try:
        # A savepoint, rolled back on refusal: the page then shows the event as stored.
        with db.session.begin_nested():
            change = changes.change_event(event, values, now, keep_seats=keep_attendees)
            db.session.flush()
    except changes.ChangeRefused as exc:
        raise EditRefused({exc.refusal.field: [str(exc)]}, 409,
                          error=_("Nothing was changed: %(reason)s.", reason=exc)) from None
    except IntegrityError:
        raise EditRefused({"slug": [SLUG_RACE]}, 409) from None
    return change


def change_summary(change: changes.EventChange, cancelled: bool) -> str:
    """What a saved change did, in a line for the organiser."""
    text = (_("Event cancelled.") if cancelled
            else _("Saved: %(fields)s changed.", fields=", ".join(change.changed)))
    if change.notified:
        text += " " + ngettext("%(num)d registrant will be told by email.",
                               "%(num)d registrants will be told by email.", change.notified)
    if change.promoted:
        text += " " + ngettext("%(num)d registrant moved from the waiting list to a seat.",
                               "%(num)d registrants moved from the waiting list to a seat.",
                               change.promoted)
    return text


def retry_summary(too_late: int) -> str:
    """Why some failed messages were not retried, as a sentence to append ('' if none)."""
    if not too_late:
        return ""
    return " " + ngettext(
        "%(num)d is past its window (it would arrive too late) and stays failed.",
        "%(num)d are past their window (they would arrive too late) and stay failed.",
        too_late)
