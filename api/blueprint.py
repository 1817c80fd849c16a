"""The API's blueprint and its OpenAPI document (flask-smorest writes it from the views and
schemas), and how the API is plugged into the app."""

from flask import g
from flask_smorest import Api, Blueprint

from api.schemas import ProblemSchema

PREFIX = "/api/v1"
TITLE = "Forum Sign-up API"
VERSION = "1"
EXTENSION = "forum_signup_api"

bp = Blueprint(
    "api", __name__, url_prefix=PREFIX,
    description="The programme as data, and the sign-up, for the organisation's own website.",
)


@bp.before_request
def sets_no_cookie() -> None:
    """Nothing under /api sets a cookie, not even the language chosen on the docs page
    (registration.language reads the flag)."""
    g.sets_no_cookie = True


class ProblemApi(Api):
    """flask-smorest's Api, its errors documented as problem details; each operation lists its
    own error answers (with their application/problem+json type), so no generic default one."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None


def spec(app) -> dict:
    """The OpenAPI document, as served at /api/v1/openapi.json."""
    return app.extensions[EXTENSION].spec.to_dict()


def init_app(app) -> ProblemApi:
    """Serve the API and its document under /api/v1. Call before the app's error pages are
    registered: flask-smorest registers a JSON handler for every HTTP error, and the app's
    own handler (HTML pages, problem details under /api) must be the one that stays."""
    from api import cors, events, form, signup  # noqa: F401  (their routes, on bp)
    from api.docs import bp as docs_bp
    from extensions import csrf

    app.config.update(
        API_TITLE=TITLE,
        API_VERSION=VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX=PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": (
            "Read the programme (open to every website) and sign people up (from the websites "
            "listed in CORS_ORIGINS, or from servers). Errors are RFC 9457 problem details in "
            "the language of Accept-Language (en, ja).")}},
    )
    api = ProblemApi(app)
    api.register_blueprint(bp)
    app.register_blueprint(docs_bp)
    app.extensions[EXTENSION] = api
    # No cookie, no session: the API's cross-site guard is CORS_ORIGINS and JSON only.
    csrf.exempt(bp)
    return api

