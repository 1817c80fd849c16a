"""POST /api/v1/events/{slug}/registrations and POST /api/v1/registrations: the sign-up form
as JSON, by the form's own rules (registration.forms.SignupForm runs on the body), limits and
services; 202 with the same body for a first and a repeat sign-up."""

from flask import abort, request
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from api import problems
from api.blueprint import bp
from api.schemas import AcceptedSchema, ProblemSchema, SeveralSignupSchema, SignupSchema
from extensions import db
from registration import language, services, times
from registration.forms import SignupForm
from registration.models import Event
from registration.several import MAX_CHOSEN
from registration.text import is_unicode
from registration.views import closed_message, signup_limits

# The form's fields a JSON body may carry as text ("consent" is a boolean, "events" a list).
TEXT_FIELDS = ("name", "email", "organisation", "affiliation", "country", "timezone",
               "language", "website")


def _errors_doc(*codes: int):
    """The problem answers an operation documents, each with its status's meaning."""
    descriptions = {
        400: "The body is not a JSON object.",
        403: "A browser page from a website not in CORS_ORIGINS.",
        404: "No session has this slug.",
        410: "The session has ended or was cancelled.",
        413: "The body is far larger than a sign-up.",
        415: "The body is not application/json.",
        422: "Fields to correct: errors lists them, in the language of Accept-Language.",
        429: "Too many sign-ups in a short time: Retry-After says how long to wait.",
    }

    def decorate(view):
        for code in codes:
            view = bp.alt_response(code, schema=ProblemSchema, content_type=problems.MEDIA_TYPE,
                                   description=descriptions[code])(view)
        return view

    return decorate


def _body() -> dict:
    """The request's JSON object; 415 for anything but JSON, 400 for JSON that is no object."""
    if not request.is_json:
        abort(415)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400)
    return data


def _form(data: dict) -> tuple[SignupForm, list[tuple[str, str]]]:
    """The sign-up form filled from the body, validated, and its errors (field, message) in the
    order of the page; a value of the wrong JSON type is an error of its field."""
    errors = []
    values = MultiDict()
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if is_unicode(value):
            values[name] = value
        else:
            errors.append((name, _("Send this field as text.")))
    if data.get("consent") is True:
        values["consent"] = "y"
    elif data.get("consent") not in (None, False):
        errors.append(("consent", _("Send true to confirm that the privacy notice was read "
                                    "and accepted.")))
    # The emails' language, unless chosen: the language the request is answered in, as the
    # page's form starts with the page's.
    values.setdefault("language", language.page_language())
    # No CSRF token: the API's guard against other sites is CORS_ORIGINS and JSON only.
    form = SignupForm(formdata=values, meta={"csrf": False})
    form.validate()
    wrong_type = {field for field, _message in errors}
    errors += [(field, messages[0]) for field, messages in form.errors.items()
               if field not in wrong_type]
    order = [field.name for field in form]
    return form, sorted(errors, key=lambda error: order.index(error[0]))


def _accepted(data: dict, events: list[Event]):
    """202: the same answer whatever happened to the address (new, repeat, waiting list)."""
    email = data.get("email")
    return {"status": "accepted", "email": email if is_unicode(email) else "",
            "events": [event.slug for event in events]}, 202


def _open_event(slug: str, now) -> Event:
    event = services.find_event(slug)
    if event is None:
        abort(404, description=problems.not_found())
    if not event.is_open_for_signup(now):
        abort(410, description=closed_message(event))
    return event


def _submit(events: list[Event], data: dict, now):
    """Sign up for the events, by the form's rules; the answer."""
    form, errors = _form(data)
    # Errors first, unlike the form's page: a client is told what it sent wrong, and a body
    # that breaks the documented schema is never accepted, trap or not.
    if errors:
        return problems.invalid(errors)
    if data.get("website"):
        # A robot filled the trap: answer as to anyone, keep nothing (as the form does).
        return _accepted(data, events)
    try:
        services.sign_up_many(events, form.applicant(), now)
    except services.SignupClosed as closed:
        # Cancelled (or ended) after this request read it, before the sign-up locked it.
        db.session.rollback()
        abort(410, description=closed_message(
            next(event for event in events if event.slug in closed.args)))
    db.session.commit()
    return _accepted(data, events)


REQUEST_BODY = {"required": True, "content": {"application/json": {"schema": SignupSchema}}}


@bp.post("/events/<slug>/registrations")
@signup_limits
@bp.doc(operationId="sign_up", requestBody=REQUEST_BODY)
@bp.response(202, AcceptedSchema, description="Accepted: an email follows (the same answer "
             "for a first and a repeat sign-up).")
@_errors_doc(400, 403, 404, 410, 413, 415, 422, 429)
def sign_up(slug):
    """Sign someone up for one session (a seat, or the waiting list when it is full)."""
    now = times.now()
    event = _open_event(slug, now)
    return _submit([event], _body(), now)


@bp.post("/registrations")
@signup_limits
@bp.doc(operationId="sign_up_several", requestBody={
    "required": True, "content": {"application/json": {"schema": SeveralSignupSchema}}})
@bp.response(202, AcceptedSchema, description="Accepted: an email per session follows.")
@_errors_doc(400, 403, 404, 410, 413, 415, 422, 429)
def sign_up_several():
    """Sign someone up for several sessions at once: all of them, or none."""
    now = times.now()
    data = _body()
    slugs = data.get("events")
    problem = _choice_problem(slugs)
    if problem:
        # Every field's error at once, the choice first, as the programme page shows them.
        return problems.invalid([("events", problem), *_form(data)[1]])
    events = [_open_event(slug, now) for slug in dict.fromkeys(slugs)]
    return _submit(events, data, now)


def _choice_problem(slugs) -> str | None:
    """What is wrong with the list of sessions, in the programme page's words where a person
    made the choice (the embed shows them), if anything."""
    if isinstance(slugs, list) and not slugs:
        return _("Choose at least one session from the programme.")
    if isinstance(slugs, list) and len(slugs) > MAX_CHOSEN:
        return _("Choose at most %(max)d sessions at a time. Go back to the programme and "
                 "untick some.", max=MAX_CHOSEN)
    if not isinstance(slugs, list) or not all(isinstance(slug, str) for slug in slugs):
        return _("List the slugs of 1 to %(max)d sessions.", max=MAX_CHOSEN)
    return None
