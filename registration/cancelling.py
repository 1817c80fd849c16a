"""Cancelling one registration from a page a link opens, the manage link's or the link to all
of a person's sessions alike: the confirmation first, then the cancellation itself."""

from flask import abort, redirect, render_template
from flask_babel import gettext as _

from extensions import db
from registration import places, services, times
from registration.models import Registration
from registration.private import private_page


def _closed(registration: Registration) -> str:
    return _("“%(title)s” has ended, so its registrations can no longer be cancelled. Nothing "
             "was changed.", title=registration.event.title)


def confirmation(registration: Registration, *, action: str, back: str):
    """Ask before cancelling: what happens to the seat (or the place in the queue). A
    registration with nothing to cancel goes `back`; after the session's end, 410."""
    now = times.now()
    if not registration.is_active or registration.event.is_cancelled:
        return redirect(back, 303)
    if not registration.event.is_open_for_cancellation(now):
        abort(410, description=_closed(registration))
    return private_page(render_template(
        "registration/cancel.html", registration=registration, event=registration.event,
        now=now, holds_seat=places.holds_seat(registration), action=action, back=back,
    ))


def cancel_or_410(registration: Registration) -> None:
    """Cancel, free the seat and promote the next person, in one transaction, committed; after
    the session's end 410 with nothing changed. A second press changes nothing."""
    try:
        services.cancel(registration, times.now())
    except services.CancellationClosed:
        message = _closed(registration)
        db.session.rollback()
        abort(410, description=message)
    db.session.commit()
