"""'Remember my details on this device': one signed, HttpOnly cookie that fills in the next
sign-up form, what it keeps, for how long, and how it is forgotten."""

from datetime import timedelta

from flask import current_app, g, request
from itsdangerous import BadData, URLSafeTimedSerializer

from registration.forms import MAX_FIELD, country_codes, offered_zones
from registration.models import AFFILIATIONS, Language
from registration.text import clean_text, first_control
from registration.tokens import signing_keys

COOKIE = "remember"
LIFETIME = timedelta(days=180)
DAYS = LIFETIME.days
# The sign-up form's fields the cookie keeps; never the consent box, nor the box itself.
FIELDS = ("name", "email", "organisation", "affiliation", "country", "timezone", "language")
# Its own salt: a value signed for another purpose (the session, a manage link) is no cookie.
SALT = "remember-my-details"


def _serializer() -> URLSafeTimedSerializer:
    # The earlier keys first, the current one last (it signs): a SECRET_KEY change keeps
    # remembered details for as long as the old key is listed in SECRET_KEY_FALLBACKS.
    return URLSafeTimedSerializer(signing_keys(), salt=SALT)


def _text(value, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = clean_text(value)
    if not value or len(value) > limit or first_control(value) is not None:
        return None
    return value


def _choice(value, allowed) -> str | None:
    return value if isinstance(value, str) and value in allowed else None


def _checked(saved: dict) -> dict[str, str]:
    """The values of a cookie the form would still take; any other is left out (a zone or a
    country no longer offered is simply not filled in)."""
    zone = _choice(saved.get("timezone"), offered_zones())
    values = {
        "name": _text(saved.get("name"), MAX_FIELD),
        "email": _text(saved.get("email"), MAX_FIELD),
        "organisation": _text(saved.get("organisation"), MAX_FIELD),
        "affiliation": _choice(saved.get("affiliation"), AFFILIATIONS),
        "country": _choice(saved.get("country"), country_codes()),
        "timezone": offered_zones()[zone] if zone else None,
        "language": _choice(saved.get("language"), tuple(Language)),
    }
    return {key: value for key, value in values.items() if value}


def details() -> dict[str, str] | None:
    """The details remembered on this device, re-checked, or None: no cookie, a tampered or
    expired one, or one signed with a key no longer listed. Never raises."""
    if "remembered_details" not in g:
        g.remembered_details = _load(request.cookies.get(COOKIE))
    return g.remembered_details


def _load(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    try:
        saved = _serializer().loads(value, max_age=int(LIFETIME.total_seconds()))
    except BadData:
        return None
    if not isinstance(saved, dict):
        return None
    # Name and address are what the notice shows: without them there is nothing to name.
    checked = _checked(saved)
    return checked if "name" in checked and "email" in checked else None


def prefill(form) -> dict[str, str]:
    """Fill an unsent sign-up form with the remembered details (never its consent box, nor
    the remember box); what was filled in, which the form also keeps as `prefilled`."""
    remembered = details() or {}
    for key, value in remembered.items():
        getattr(form, key).data = value
    form.prefilled = frozenset(remembered)
    return remembered


def remember(response, form):
    """Keep a valid form's details on the response's cookie, for LIFETIME from now."""
    value = _serializer().dumps({key: getattr(form, key).data for key in FIELDS})
    response.set_cookie(COOKIE, value, max_age=int(LIFETIME.total_seconds()), httponly=True,
                        samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def forget(response):
    """Clear the cookie."""
    response.delete_cookie(COOKIE, httponly=True, samesite="Lax",
                           secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def template_helpers() -> dict:
    """Template globals for the remember box and the notice of remembered details."""
    return {"remembered_details": details, "remember_days": DAYS}
