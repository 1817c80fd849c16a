"""The public calendar files: one session to download, and the programme to subscribe to.

Both answer conditional requests (ETag from the body, Last-Modified from the newest change of
their sessions): a calendar app polling the programme gets a 304 until something changes.
Their words (a cancelled session's title) follow the page language rules: ?lang=, the `lang`
cookie, Accept-Language. The subscription links carry the ?lang= of the page they are on,
since a calendar app fetches without the visitor's cookie or browser language.
"""

import hashlib
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request, url_for

from extensions import db
from notifications import ical
from registration import language
from registration.lookup import event_or_404
from registration.models import Event

bp = Blueprint("feeds", __name__)

# Shorter than the six hours the programme asks subscribers to wait between fetches; after
# it a cache asks again with the validators, and a 304 costs next to nothing.
CACHE_CONTROL = "public, max-age=3600"
GOOGLE_ADD_BY_URL = "https://calendar.google.com/calendar/r?cid="


def calendar_response(body: bytes, filename: str) -> Response:
    """A calendar file, shown inline (a calendar app opens it) under its file name."""
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _public_file(body: bytes, filename: str, events: Sequence[Event]) -> Response:
    response = calendar_response(body, filename)
    # A strong validator of the exact bytes: it changes with any change to what is sent,
    # the language included.
    response.set_etag(hashlib.sha256(body).hexdigest())
    if events:
        response.last_modified = max(event.updated_at for event in events)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.update(("Cookie", "Accept-Language"))
    return response.make_conditional(request)


def webcal(path: str) -> str:
    """The subscription address of a calendar file: webcal:// makes calendar apps subscribe
    (and keep it updated) instead of importing a copy."""
    return "webcal://" + urlsplit(current_app.config["BASE_URL"]).netloc + path


def subscription_links() -> dict[str, str]:
    """The programme's subscription address and Google Calendar's "add by URL" link to it,
    both in the language of the page that offers them."""
    address = webcal(url_for("feeds.programme_ics", lang=language.page_language()))
    return {"subscribe_url": address,
            "google_calendar_url": GOOGLE_ADD_BY_URL + quote(address, safe="")}


@bp.get("/events/<slug>.ics")
def event_ics(slug):
    """One session as a calendar file, without join link or attendees."""
    event = event_or_404(slug)
    body = ical.public_calendar([event], current_app.config["BASE_URL"])
    return _public_file(body, f"{event.slug}.ics", [event])


@bp.get("/programme.ics")
def programme_ics():
    """Every published session (cancelled ones marked so), for subscribing to."""
    events = db.session.scalars(sa.select(Event).order_by(Event.starts_at, Event.id)).all()
    body = ical.public_calendar(events, current_app.config["BASE_URL"],
                                name=current_app.config["PROGRAMME_NAME"], refresh=ical.REFRESH)
    return _public_file(body, "programme.ics", events)
