"""The console's attendee pages: the search across sessions, one registration's page and its
actions (cancel, re-send, a seat ahead of the queue, clear an undeliverable mark), and adding
someone by hand. Views only: each action goes through registration.services, is audited and
commits once."""


from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from extensions import db
from notifications import reminders
from organisers import auth, roster
from organisers.forms import AttendeeForm, CancelForm, PromoteForm
from organisers.timeline import KIND_LABELS, RSVP_LABELS, STATUS_LABELS
from registration import people, places, services, times
from registration.forms import country_name
from registration.lookup import event_or_404
from registration.models import Registration

bp = Blueprint("organiser_attendees", __name__, url_prefix="/admin")

@bp.context_processor
def _helpers():
    return {"kind_label": KIND_LABELS.get, "rsvp_labels": RSVP_LABELS,
            "status_label": STATUS_LABELS.get,
            "country_name": country_name}


@bp.get("/attendees")
@auth.login_required
def search():
    """Attendees of every session whose name, address or organisation holds the search."""
    query = roster.clean_query(request.args.get("q"))
    found = None
    if query:
        found = roster.search(query, request.args.get("page", 1, type=int))
    return render_template("organisers/attendees.html", query=query, found=found)


def _registration_or_404(registration_id: int) -> Registration:
    registration = roster.registration_or_none(registration_id)
    if registration is None:
        abort(404, description=_("No registration has the number %(id)d.", id=registration_id))
    return registration


def _render(registration: Registration, status: int = 200, *, error: str | None = None,
            cancel_form: CancelForm | None = None, promote_form: PromoteForm | None = None):
    now = times.now()
    return render_template(
        "organisers/registration.html", registration=registration, event=registration.event,
        person=registration.person, messages=roster.messages_of(registration),
        planned=reminders.planned_for(registration, now),
        added_by=roster.added_by(registration), now=now, error=error,
        position=places.waiting_position(registration),
        cancel_form=cancel_form or CancelForm(formdata=None),
        promote_form=promote_form or PromoteForm(formdata=None),
    ), status


def _refused(registration_id: int, status: int, error: str, **forms):
    """The page again with why the action was refused (the services changed nothing)."""
    return _render(_registration_or_404(registration_id), status, error=error, **forms)


def _done(registration: Registration, message: str):
    flash(message)
    return redirect(url_for(".registration_page", registration_id=registration.id), 303)


def _target(registration: Registration) -> str:
    # Logs and the audit log name rows by id, never a person's name or address.
    return f"registration {registration.id}"


@bp.get("/registrations/<int:registration_id>")
@auth.login_required
def registration_page(registration_id):
    """One registration: its details, its emails, and what an organiser may do with it."""
    return _render(_registration_or_404(registration_id))


@bp.post("/registrations/<int:registration_id>/cancel")
@auth.login_required
def cancel(registration_id):
    """Cancel the registration, with an optional note quoted in the person's email; the seat
    goes to the first person waiting."""
    registration = _registration_or_404(registration_id)
    form = CancelForm()
    if not form.validate():
        return _render(registration, 422, cancel_form=form,
                       error=_("Nothing was changed: correct the note below."))
    was = registration.status
    if not registration.is_active:
        return _refused(registration_id, 409, _("Nothing was changed: this registration is "
                                                "already cancelled."))
    try:
        done = services.cancel(registration, times.now(), by="console",
                               reason=form.reason.data or None)
    except services.CancellationClosed:
        return _refused(registration_id, 409, _(
            "Nothing was changed: the session has ended, so its registrations stay as they "
            "were (who had a seat, who is owed the recording)."))
    if not done:
        return _refused(registration_id, 409, _("Nothing was changed: this registration is "
                                                "already cancelled."))
    auth.audit("registration cancelled", _target(registration),
               {"event": registration.event.slug, "was": was, "note": bool(form.reason.data)})
    db.session.commit()
    if registration.event.is_cancelled:
        # The session's own cancellation told them already: nothing more is sent.
        return _done(registration, _("Registration cancelled (the session was cancelled "
                                     "already, so no further email goes out)."))
    return _done(registration, _("Registration cancelled; the attendee will be told by email."))


@bp.post("/registrations/<int:registration_id>/resend")
@auth.login_required
def resend(registration_id):
    """Send the confirmation (or the waiting-list notice) again."""
    registration = _registration_or_404(registration_id)
    try:
        message = services.resend_confirmation(registration, times.now())
    except services.ActionRefused:
        return _refused(registration_id, 409, _(
            "Nothing was sent: only an active registration of a session that is neither over "
            "nor cancelled has a confirmation to send."))
    auth.audit("confirmation re-sent", _target(registration),
               {"event": registration.event.slug, "kind": message.kind})
    db.session.commit()
    return _done(registration, _("The %(kind)s will be sent again shortly.",
                                 kind=KIND_LABELS[message.kind]))


@bp.post("/registrations/<int:registration_id>/promote")
@auth.login_required
def promote(registration_id):
    """Give this waiting person a seat ahead of the queue (beyond the capacity only when the
    organiser ticks the box)."""
    registration = _registration_or_404(registration_id)
    form = PromoteForm()
    over = bool(form.over_capacity.data)
    try:
        services.promote(registration, times.now(), over_capacity=over)
    except services.NoSeatFree:
        return _refused(registration_id, 409, _(
            "Nothing was changed: every seat is taken. Tick “give a seat even though the "
            "session is full” to exceed the capacity, or raise the capacity first."),
            promote_form=form)
    except services.ActionRefused:
        return _refused(registration_id, 409, _(
            "Nothing was changed: only someone on the waiting list of a session that is "
            "neither over nor cancelled can be given a seat."))
    event = registration.event
    auth.audit("moved to a seat", _target(registration),
               {"event": event.slug, "over_capacity": over,
                "seats_taken": event.confirmed_count, "capacity": event.capacity})
    db.session.commit()
    return _done(registration, _("Moved to a seat; the invite will be sent shortly."))


@bp.post("/registrations/<int:registration_id>/clear-undeliverable")
@auth.login_required
def clear_undeliverable(registration_id):
    """Lift the undeliverable mark on the person's address: email to it goes out again."""
    registration = _registration_or_404(registration_id)
    person = people.find(registration.email_key, lock=True)
    if person is None or not person.is_undeliverable:
        return _refused(registration_id, 409, _("Nothing was changed: the address is not "
                                                "marked undeliverable."))
    reason = person.undeliverable_reason
    person.clear_undeliverable()
    auth.audit("undeliverable mark cleared", _target(registration),
               {"event": registration.event.slug, "reason": reason})
    db.session.commit()
    return _done(registration, _("The mark is cleared: emails to this address go out again."))


# --- adding someone by hand ----------------------------------------------------------------


def _render_new(event, form: AttendeeForm, status: int = 200, error: str | None = None):
    return render_template("organisers/attendee_new.html", event=event, form=form,
                           error=error), status


@bp.route("/events/<slug>/attendees/new", methods=["GET", "POST"])
@auth.login_required
def add_attendee(slug):
    """Sign someone up by hand, by the public form's rules; they get the usual email."""
    event = event_or_404(slug)
    now = times.now()
    if request.method == "GET":
        form = AttendeeForm(formdata=None, timezone=event.timezone, language=event.language)
        if not event.is_open_for_signup(now):
            return _closed(event, form, status=200)
        return _render_new(event, form)
    form = AttendeeForm()
    if not event.is_open_for_signup(now):
        return _closed(event, form)
    if not form.validate():
        return _render_new(event, form, 422)
    try:
        registration, is_new = services.add_by_hand(event, form.applicant(), now,
                                                    organiser_id=g.organiser.id)
    except services.SignupClosed:
        # Cancelled or ended since this request read it: refused before anything was stored.
        return _closed(event, form)
    auth.audit("attendee added" if is_new else "attendee added again", _target(registration),
               {"event": event.slug, "status": registration.status, "repeat": not is_new})
    db.session.commit()
    if is_new:
        message = _("Added; they will get the usual email shortly.")
    else:
        message = _("This address already holds a place in this session: nothing was added, "
                    "and its confirmation will be sent again (at most 3 a day).")
    return _done(registration, message)


def _closed(event, form: AttendeeForm, status: int = 409):
    error = (_("Nobody can be added: the session was cancelled.") if event.is_cancelled
             else _("Nobody can be added: the session has ended."))
    return _render_new(event, form, status, error)
