"""Who may call the API from a browser: everyone may read; only the origins in CORS_ORIGINS
(and servers, which send no Origin) may post. Never credentials, never a cookie."""

from flask import abort, current_app, request
from flask_babel import gettext as _

from api.blueprint import bp

PREFLIGHT_MAX_AGE = 600
READING = frozenset({"GET", "HEAD"})


def _allowed(origin: str) -> bool:
    return origin in current_app.config["CORS_ORIGINS"]


@bp.before_request
def refuse_other_origins():
    """A POST from a page of a website not in CORS_ORIGINS: 403 before anything is read."""
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin is not None and not _allowed(origin):
        abort(403, description=_("Sign-ups are accepted only from the websites the organisers "
                                 "listed; this page's website is not one of them."))


@bp.after_request
def cors_headers(response):
    """Access-Control-* for every answer of the API, errors included (a page must be able to
    read a 422 to show it); never credentials (nor a cookie: the API touches no session, and
    registration.language.keep_choice keeps no language for a JSON answer)."""
    origin = request.headers.get("Origin")
    if request.method in READING:
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        response.vary.add("Origin")
        if origin is not None and _allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            # A page may read how long a 429 asks it to wait.
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "POST"
                response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept-Language"
                response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    response.headers.pop("Access-Control-Allow-Credentials", None)
    return response
