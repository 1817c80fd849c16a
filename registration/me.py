"""A person's own page of all their sessions (/me/<token>), the "Lost your link?" form that
emails it, signing out of the link everywhere and deleting all of one's data at once."""

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from extensions import db, limiter
from registration import cancelling, language, people, places, retention, times, tokens
from registration.forms import LostLinkForm
from registration.models import Person
from registration.private import private_page

bp = Blueprint("me", __name__)
CANCEL_PATH = "/me/<token>/cancel/<int:registration_id>"


def _person_or_404(token: str) -> tuple[Person, list]:
    """The person the link names, and their current registrations; the page starts in the
    language of their latest registration."""
    person = people.find_by_token(token) or abort(404)
    registrations = people.current_registrations(person, times.now())
    latest = people.latest_registration(person)
    if latest is not None:
        language.start_in(latest.language)
    return person, registrations


@bp.get("/me")
def lost_link():
    """"Lost your link?": the form that emails the link to all one's sessions."""
    return render_template("registration/lost_link.html", form=LostLinkForm(formdata=None))


@bp.post("/me")
@limiter.limit(lambda: current_app.config["RATELIMIT_MY_LINK_PER_IP"])
def send_lost_link():
    """Email the link if the address is registered; the same answer whether it is or not."""
    form = LostLinkForm()
    if not form.validate():
        g.switch_path = url_for(".lost_link")
        return render_template("registration/lost_link.html", form=form), 422
    people.request_link(form.email_key, times.now())
    db.session.commit()
    return redirect(url_for(".link_sent"), 303)


@bp.get("/me/sent")
def link_sent():
    """The neutral answer of the lost-link form (and of signing out everywhere)."""
    return render_template("registration/link_sent.html",
                           signed_out=request.args.get("after") == "sign-out",
                           per_hour=people.LINK_EMAILS_PER_HOUR)


@bp.get("/me/<token>")
def page(token):
    """All the person's current registrations: upcoming first, then past ones."""
    person, registrations = _person_or_404(token)
    now = times.now()
    items = [{
        "registration": registration,
        "event": registration.event,
        "holds_seat": places.holds_seat(registration),
        "position": places.waiting_position(registration),
        "manage_token": tokens.manage_token(registration),
        "ended": registration.event.has_ended(now),
    } for registration in registrations]
    # Back from cancelling one: say so, by the session's title.
    just_cancelled = None
    cancelled = request.args.get("cancelled", "")
    if (cancelled.isascii() and cancelled.isdigit() and len(cancelled) <= 10
            and int(cancelled) <= tokens.MAX_ID):
        just_cancelled = people.one_of_theirs(person, int(cancelled))
        if just_cancelled is not None and just_cancelled.is_active:
            just_cancelled = None
    return private_page(render_template(
        "registration/me.html", token=token, now=now, just_cancelled=just_cancelled,
        upcoming=[item for item in items if not item["ended"]],
        past=[item for item in items if item["ended"]],
    ))


def _theirs_or_404(person: Person, registration_id: int):
    # A larger id is no registration's (and PostgreSQL's integer would refuse it).
    if registration_id > tokens.MAX_ID:
        abort(404)
    return people.one_of_theirs(person, registration_id) or abort(404)


@bp.get(CANCEL_PATH)
def cancel_confirm(token, registration_id):
    """Ask before cancelling one of the person's registrations, as the manage page does."""
    person, _registrations = _person_or_404(token)
    registration = _theirs_or_404(person, registration_id)
    return cancelling.confirmation(
        registration, action=url_for(".cancel", token=token, registration_id=registration.id),
        back=url_for(".page", token=token))


@bp.post(CANCEL_PATH)
def cancel(token, registration_id):
    """Cancel one of the person's registrations (the seat goes to the waiting list), then
    back to the list; a second press changes nothing."""
    person, _registrations = _person_or_404(token)
    registration = _theirs_or_404(person, registration_id)
    cancelling.cancel_or_410(registration)
    return redirect(url_for(".page", token=token, cancelled=registration.id), 303)


@bp.post("/me/<token>/sign-out")
def sign_out(token):
    """Sign out of this link everywhere: a new link, emailed; every earlier one stops working."""
    person, _registrations = _person_or_404(token)
    people.sign_out_everywhere(person, times.now())
    db.session.commit()
    return redirect(url_for(".link_sent", after="sign-out"), 303)


@bp.get("/me/<token>/delete")
def delete_data_confirm(token):
    """Ask before deleting the data of every registration of the person."""
    person, registrations = _person_or_404(token)
    now = times.now()
    return private_page(render_template(
        "registration/me_delete.html", token=token, now=now, registrations=registrations,
        cancelled_first=[r for r in registrations if not r.event.is_cancelled
                         and r.event.is_open_for_cancellation(now)],
    ))


@bp.post("/me/<token>/delete")
def delete_data(token):
    """Delete the data of all the person's registrations at once, with the rules of deleting
    one; the link stops working."""
    person, _registrations = _person_or_404(token)
    retention.delete_all_my_data(person, times.now())
    db.session.commit()
    return redirect(url_for("registration.data_deleted"), 303)
