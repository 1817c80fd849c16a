"""GET /api/v1/form: the sign-up form described for the embed, in one language: its fields in
the page's order with the same labels, hints, limits and choices as our own page, the honeypot's
name, and every other sentence the embed shows, translated.

A field's `type` is text, email, select, radio (the type of organisation) or checkbox (the
consent, with a `link` to the privacy notice); a select or radio has `options` [{value, label}],
the country list a `placeholder`. Keys may be added; none is removed without telling the
embed's side (and openapi.json shows every change). `texts` holds {n} and {email} placeholders
the embed fills in."""

from flask import current_app, request, url_for
from flask_babel import gettext as _

from api import problems
from api.blueprint import bp
from api.events import public_json
from api.schemas import FormSchema, ProblemSchema
from registration import language
from registration.forms import HINTS, MAX_EMAIL, MAX_FIELD, SignupForm, countries, time_zones
from registration.models import AFFILIATIONS, LANGUAGE_LABELS

CACHE_CONTROL = "public, max-age=300"


def _field(field, type_, *, required=True, hint=None, maxlength=None, autocomplete=None,
           options=None, label=None, **extra) -> dict:
    return {"name": field.name, "type": type_, "label": str(label or field.label.text),
            "hint": str(hint) if hint else None, "required": required, "maxlength": maxlength,
            "autocomplete": autocomplete,
            "options": [{"value": value, "label": str(text)} for value, text in options]
            if options is not None else None, **extra}


def fields(form: SignupForm, locale: str) -> list[dict]:
    """The form's fields as the page shows them (registration/_signup_fields.html)."""
    return [
        _field(form.name, "text", maxlength=MAX_FIELD, autocomplete="name"),
        _field(form.email, "email", hint=HINTS["email"], maxlength=MAX_EMAIL,
               autocomplete="email"),
        _field(form.organisation, "text", required=False, maxlength=MAX_FIELD,
               autocomplete="organization",
               label=_("%(label)s (optional)", label=form.organisation.label.text)),
        _field(form.affiliation, "radio", options=AFFILIATIONS.items()),
        _field(form.country, "select", autocomplete="country", options=countries(locale),
               placeholder=_("Choose your country")),
        _field(form.timezone, "select", hint=HINTS["timezone"], options=time_zones(locale)),
        _field(form.language, "select", options=LANGUAGE_LABELS.items()),
        _field(form.consent, "checkbox",
               label=_("I have read and accept the privacy notice"),
               link={"text": _("Read the privacy notice (opens in a new tab)"),
                     "url": current_app.config["BASE_URL"] + url_for("registration.privacy")}),
    ]


def texts() -> dict[str, str]:
    """Every other sentence the embed shows, in the request's language."""
    return {
        "submit": _("Sign up"),
        "submit_several": _("Sign up for the chosen sessions"),
        "choose_sessions": _("Choose the sessions you want to attend"),
        "seats_left": _("Seats left: {n}"),
        "unlimited": _("No seat limit"),
        "full_waiting_list": _("Fully booked: waiting list open"),
        "cancelled": _("Cancelled"),
        "ended": _("This session has ended."),
        "error_summary_title": _("There is a problem"),
        "network_error": _("Your sign-up could not be sent. Check your connection and try "
                           "again."),
        "accepted_title": _("Check your email"),
        "accepted_body": _("We have sent an email to {email}. It tells you whether you have a "
                           "seat or are on the waiting list, and holds a link to manage or "
                           "cancel your registration."),
        "times_in_your_zone": _("Times are shown in your time zone."),
        "hosted_link": _("Sign up on the forum’s own page"),
        "loading": _("Loading…"),
        # The same words as our own pages: the hidden word before a field's message, a full
        # session's button, an empty programme, a session that is not (or no longer) in it.
        "error_prefix": _("Error:"),
        "join_waiting_list": _("Join the waiting list"),
        "no_sessions": _("No upcoming sessions."),
        "no_sessions_filtered": _("No upcoming sessions match these filters."),
        "not_found": _("This session is not in the programme."),
        # A 429's detail speaks of Retry-After (for developers); people get the page's words.
        "too_many": _("Too many attempts from you in a short time. Please wait a little and "
                      "try again."),
    }


@bp.get("/form")
@bp.doc(operationId="describe_form", parameters=[
    {"in": "query", "name": "lang", "required": False,
     "schema": {"type": "string", "enum": list(language.LANGUAGE_NAMES)},
     "description": "The language (else Accept-Language, else English)."}])
@bp.response(200, FormSchema, description="The form, in one language.",
             headers={"ETag": {"schema": {"type": "string"}}})
@bp.alt_response(304, description="Not modified (If-None-Match).")
@bp.alt_response(422, schema=ProblemSchema, content_type=problems.MEDIA_TYPE,
                 description="A language we don't have.")
def describe_form():
    """The sign-up form's fields and the embed's sentences, translated."""
    if request.args.get("lang", "en") not in language.LANGUAGE_NAMES:
        return problems.invalid([("lang", problems.choose_one_of(language.LANGUAGE_NAMES))])
    locale = language.page_language()
    form = SignupForm(formdata=None, meta={"csrf": False})
    response = public_json({"language": locale, "fields": fields(form, locale),
                            "honeypot": form.website.name, "texts": texts()})
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.update(("Accept-Language", "Cookie"))
    return response
