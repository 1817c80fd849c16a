"""Errors on /api as RFC 9457 problem details (application/problem+json), in the request's
language; the HTML pages keep their own error pages (app.py asks `wanted()` first)."""

from flask import Response, has_request_context, json, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

PREFIX = "/api/"
MEDIA_TYPE = "application/problem+json"

# The problem's title: the status in words (RFC 9457's "about:blank" type asks for the
# status phrase), translated.
TITLES = {
    400: _l("Bad request"),
    403: _l("Forbidden"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    410: _l("Gone"),
    413: _l("Content too large"),
    415: _l("Unsupported media type"),
    422: _l("Unprocessable content"),
    429: _l("Too many requests"),
    500: _l("Internal server error"),
    503: _l("Service unavailable"),
}
# What to do about it, when the code that refused said nothing more specific.
DETAILS = {
    400: _l("The request could not be understood: send a JSON object as the documentation "
            "at /api/v1/docs describes."),
    403: _l("This is not allowed."),
    404: _l("There is nothing at this address: see /api/v1/docs for the API's addresses."),
    405: _l("This address does not take this method: the Allow header lists those it takes."),
    410: _l("This session no longer takes sign-ups."),
    413: _l("The body is far larger than a sign-up: send only the documented fields."),
    415: _l("Send the body as JSON, with the header Content-Type: application/json."),
    422: _l("Some fields need correcting: each error names its field."),
    429: _l("Too many requests from you in a short time: wait as long as Retry-After says, "
            "then try again."),
    500: _l("Something went wrong on our side; nothing you sent caused it. Please try again "
            "later."),
    503: _l("The service is very busy or its database can't be reached just now. Nothing was "
            "changed; please try again in a minute."),
}


def wanted() -> bool:
    """Whether this request's errors are answered as problem details (it is under /api)."""
    return has_request_context() and (request.path + "/").startswith(PREFIX)


def problem(status: int, detail: str | None = None, *, errors: list[dict] | None = None,
            headers=None) -> Response:
    """A problem+json response for the status, with its translated title and detail."""
    body = {
        "type": "about:blank",
        # A status without words of ours (rare: 406, 501…) has the HTTP phrase, in English.
        "title": str(TITLES.get(status) or HTTP_STATUS_CODES.get(status, "Error")),
        "status": status,
        "detail": str(detail or DETAILS.get(status) or DETAILS[500 if status >= 500 else 400]),
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status, headers=headers, mimetype=MEDIA_TYPE)
    response.vary.add("Accept-Language")
    return response


def invalid(errors: dict[str, list[str]] | list[tuple[str, str]]) -> Response:
    """422: what is wrong with each field, in the request's language; never the value sent."""
    pairs = errors.items() if isinstance(errors, dict) else errors
    return problem(422, errors=[
        {"field": field, "message": str(messages[0] if isinstance(messages, list) else messages)}
        for field, messages in pairs])


def from_http_exception(exc: HTTPException) -> Response:
    """An HTTP error raised anywhere under /api (a view's abort, routing, the limiter)."""
    code = exc.code or 500
    # A view's own words, except the limiter's (its description is the limit, for machines).
    own = code != 429 and exc.description != type(exc).description
    headers = [(name, value) for name, value in exc.get_headers()
               if name.lower() != "content-type"]
    return problem(code, exc.description if own else None, headers=headers)


def not_found() -> str:
    """The detail of a 404 for a session slug: no echo of what was sent."""
    return _("There is no session with this slug in the programme: GET /api/v1/events lists "
             "them.")


def choose_one_of(values) -> str:
    """The message for a value that is not one of the listed ones (which it never repeats)."""
    return _("Choose one of: %(values)s.", values=", ".join(values))
