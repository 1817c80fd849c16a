"""The one-click unsubscribe link of reminders and follow-ups (List-Unsubscribe, RFC 8058).

A POST of `List-Unsubscribe=One-Click` to the link, as a mail client sends it (no cookie, no
CSRF token), stops the registration's reminders and follow-ups and keeps its seat. A GET
changes nothing (link scanners open links): it shows a button that sends the same POST. The
link's token is good for nothing else: it can't open the manage page or cancel."""

from flask import Blueprint, abort, render_template, request

from extensions import csrf, db
from notifications import planner
from registration import language, times, tokens
from registration.models import Registration
from registration.private import private_page

bp = Blueprint("unsubscribe", __name__)

# The form field of a one-click POST (RFC 8058); the page's button sends the same.
FIELD, VALUE = "List-Unsubscribe", "One-Click"


def url(registration: Registration, base_url: str) -> str | None:
    """The registration's unsubscribe link, as List-Unsubscribe carries it; none once its data
    was deleted (nobody is left to write to)."""
    if registration.anonymised_at is not None:
        return None
    return f"{base_url}/u/{tokens.unsubscribe_token(registration)}"


def _registration_or_404(token: str) -> Registration:
    registration = tokens.holder(Registration, token, purpose=tokens.UNSUBSCRIBE)
    if registration is None or registration.anonymised_at is not None:
        abort(404)
    language.start_in(registration.language)
    return registration


@bp.get("/u/<token>")
def confirm(token):
    """What the link does, and a button that does it; nothing changes yet."""
    registration = _registration_or_404(token)
    return _page(registration)


@bp.post("/u/<token>")
@csrf.exempt  # a mail client's one-click POST carries no token; the link itself is the key
def unsubscribe(token):
    """Stop the registration's reminders and follow-ups; its seat and other emails stay."""
    registration = _registration_or_404(token)
    if request.form.get(FIELD) != VALUE:
        abort(400)
    planner.unsubscribe(registration, times.now())
    db.session.commit()
    return _page(registration)


def _page(registration: Registration):
    """What the link does (a button) or, once used, that it is done."""
    return private_page(render_template(
        "registration/unsubscribe.html", registration=registration, event=registration.event,
        done=registration.unsubscribed_at is not None, field=FIELD, value=VALUE,
    ))
