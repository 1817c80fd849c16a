"""GET /api/v1/events and /api/v1/events/{slug}: the published sessions as data, public and
cacheable (ETag, 304, Cache-Control), for any website.

The list is an object, {"events": [...]}, so that keys can be added beside it."""

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Response, abort, current_app, json, request, url_for
from flask_babel import gettext as _

from api import problems
from api.blueprint import bp
from api.schemas import EventListSchema, EventSchema, ProblemSchema
from extensions import db
from registration import services, times
from registration.models import Event, EventKind, Language, Pillar

CACHE_CONTROL = "public, max-age=60"
FILTERS = {"kind": tuple(EventKind), "pillar": tuple(Pillar), "language": tuple(Language)}
# OpenAPI links: from the list to a session, from a session to its sign-up (a client, and
# schemathesis's stateful run, can follow them).
LIST_LINKS = {"GetFirstEvent": {
    "operationId": "get_event", "parameters": {"slug": "$response.body#/events/0/slug"},
    "description": "The first session of the list."}}
EVENT_LINKS = {"SignUp": {
    "operationId": "sign_up", "parameters": {"slug": "$response.body#/slug"},
    "description": "Sign up for this session."}}


def status(event: Event, now: datetime) -> str:
    """scheduled, cancelled, or ended (a cancelled session stays cancelled after its end)."""
    if event.is_cancelled:
        return "cancelled"
    return "ended" if event.has_ended(now) else "scheduled"


def describe(event: Event, now: datetime) -> dict:
    """An event as the API shows it: never the join link; the recording once it has ended."""
    base = current_app.config["BASE_URL"]
    return {
        "slug": event.slug,
        "title": event.title,
        "kind": str(event.kind),
        "pillar": str(event.pillar) if event.pillar else None,
        "language": str(event.language),
        "description": event.description or "",
        "starts_at": times.utc_iso(event.starts_at),
        "ends_at": times.utc_iso(event.ends_at),
        "timezone": event.timezone,
        "capacity": event.capacity,
        "seats_left": event.seats_left(),
        "status": status(event, now),
        "page_url": base + url_for("registration.event_page", slug=event.slug),
        "ics_url": base + url_for("feeds.event_ics", slug=event.slug),
        "recording_url": event.recording_url if event.has_ended(now) else None,
    }


def public_json(body) -> Response:
    """A public, cacheable JSON answer: ETag from its bytes, 304 when the client has them."""
    response = Response(json.dumps(body), mimetype="application/json")
    response.add_etag()
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response.make_conditional(request)


def _moment(name: str) -> tuple[datetime | None, str | None]:
    """The filter's time (UTC), or the message for a time that can't be read."""
    raw = request.args.get(name)
    if raw is None:
        return None, None
    try:
        moment = datetime.fromisoformat(raw)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None, _("Give a date and time in ISO 8601, like 2025-07-01T00:00:00Z.")
    return moment, None


@bp.get("/events")
@bp.doc(operationId="list_events", responses={200: {"links": LIST_LINKS}}, parameters=[
    {"in": "query", "name": name, "required": False,
     "schema": {"type": "string", "enum": list(values)}} for name, values in FILTERS.items()
] + [
    # ISO 8601 as Python reads it (a date, a date-time, with or without a zone): wider than
    # JSON Schema's date-time format, so no format is claimed.
    {"in": "query", "name": "from", "required": False, "schema": {"type": "string"},
     "description": "Only sessions that end at or after this time: ISO 8601, like "
                    "2025-07-01T00:00:00Z (a date, or no zone: UTC)."},
    {"in": "query", "name": "to", "required": False, "schema": {"type": "string"},
     "description": "Only sessions that start before this time: ISO 8601, as `from`."},
])
@bp.response(200, EventListSchema, description="The sessions, soonest first.",
             headers={"ETag": {"schema": {"type": "string"}}})
@bp.alt_response(304, description="Not modified (If-None-Match).")
@bp.alt_response(422, schema=ProblemSchema, content_type=problems.MEDIA_TYPE,
                 description="A filter can't be read.")
def list_events():
    """The programme: every published session, past ones included, filtered."""
    errors = []
    query = sa.select(Event).order_by(Event.starts_at, Event.id)
    for name, values in FILTERS.items():
        value = request.args.get(name)
        if value is None:
            continue
        if value not in values:
            errors.append((name, problems.choose_one_of(values)))
        else:
            query = query.where(getattr(Event, name) == value)
    start, problem = _moment("from")
    if problem:
        errors.append(("from", problem))
    elif start is not None:
        query = query.where(Event.ends_at >= start)
    end, problem = _moment("to")
    if problem:
        errors.append(("to", problem))
    elif end is not None:
        query = query.where(Event.starts_at < end)
    if errors:
        return problems.invalid(errors)
    now = times.now()
    return public_json({"events": [describe(event, now)
                                   for event in db.session.scalars(query)]})


@bp.get("/events/<slug>")
@bp.doc(operationId="get_event", responses={200: {"links": EVENT_LINKS}})
@bp.response(200, EventSchema, description="The session.",
             headers={"ETag": {"schema": {"type": "string"}}})
@bp.alt_response(304, description="Not modified (If-None-Match).")
@bp.alt_response(404, schema=ProblemSchema, content_type=problems.MEDIA_TYPE,
                 description="No session has this slug.")
def get_event(slug):
    """One session."""
    event = services.find_event(slug)
    if event is None:
        abort(404, description=problems.not_found())
    return public_json(describe(event, times.now()))
