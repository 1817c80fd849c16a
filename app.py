"""The application factory: settings (settings.py), extensions, blueprints, CLI and error pages."""

import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from extensions import babel, csrf, db, describe_database_error, engine_options, limiter, migrate
from settings import CONTENT_SECURITY_POLICY, SETTING_NAMES, ConfigError, load_settings


class PrintableConverter(BaseConverter):
    """The default URL part: anything printable but '/', so a NUL or control character in a
    path is a 404 rather than a value handed to the database (PostgreSQL refuses NUL)."""

    regex = r"[^/\x00-\x1f\x7f]+"


def create_app(test_config=None):
    """Build the app; test_config holds setting strings (as in the environment) and overrides."""
    app = Flask(__name__, instance_relative_config=True)
    app.url_map.converters["default"] = PrintableConverter
    test_config = dict(test_config or {})
    if not test_config:
        from dotenv import load_dotenv

        load_dotenv(Path(app.root_path) / ".env")
    env = {**os.environ, **{k: v for k, v in test_config.items() if k in SETTING_NAMES}}
    try:
        app.config.update(load_settings(env, app.instance_path))
    except ConfigError as exc:
        # One line that names the setting, never a traceback.
        raise SystemExit(f"Configuration error: {exc}") from None
    app.config.update({k: v for k, v in test_config.items() if k not in SETTING_NAMES})
    # The one clock the edges (views, CLI, scheduler) read; tests replace it.
    app.config.setdefault("CLOCK", lambda: datetime.now(UTC))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config["TRUSTED_PROXIES"]:
        # Behind a load balancer the client's address (for rate limits and the audit log) and
        # scheme come from its X-Forwarded-* headers, trusted for exactly that many hops.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path) / "migrations"),
                     render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    from registration import language

    babel.init_app(app, locale_selector=language.select_language)
    if missing := language.missing_catalogues(Path(app.root_path)):
        # Without its compiled catalogue a language is served in English without a word.
        raise SystemExit(f"Configuration error: the {', '.join(missing)} catalogue is not "
                         "compiled: run `make catalogues` (pybabel compile -d translations)")

    import api
    import notifications.models  # noqa: F401  (every table known to Alembic and the session)
    import organisers.models  # noqa: F401
    import registration.models  # noqa: F401
    from notifications import cli as notifications_cli
    from notifications import scheduler
    from organisers import cli as organisers_cli
    from organisers.attendees import bp as organiser_attendees_bp
    from organisers.events import bp as organiser_events_bp
    from organisers.exports import bp as organiser_exports_bp
    from organisers.messages import bp as organiser_messages_bp
    from organisers.profile import bp as organiser_profile_bp
    from organisers.views import bp as organisers_bp
    from registration import cli as registration_cli
    from registration import fragments
    from registration.embed import bp as embed_bp
    from registration.feeds import bp as feeds_bp
    from registration.me import bp as me_bp
    from registration.several import bp as signup_bp
    from registration.unsubscribe import bp as unsubscribe_bp
    from registration.views import bp as registration_bp
    from registration.views import format_helpers

    app.register_blueprint(registration_bp)
    app.register_blueprint(signup_bp)
    app.register_blueprint(embed_bp)
    app.register_blueprint(me_bp)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(unsubscribe_bp)
    app.register_blueprint(organisers_bp)
    app.register_blueprint(organiser_events_bp)
    app.register_blueprint(organiser_attendees_bp)
    app.register_blueprint(organiser_exports_bp)
    app.register_blueprint(organiser_profile_bp)
    app.register_blueprint(organiser_messages_bp)
    # Before the error pages: see api.init_app.
    api.init_app(app)
    app.jinja_env.globals.update(format_helpers())
    app.jinja_env.globals.update(language.template_helpers())
    fragments.init_app(app)
    registration_cli.init_app(app)
    notifications_cli.init_app(app)
    organisers_cli.init_app(app)
    _register_error_pages(app)
    app.after_request(_security_headers)
    app.after_request(language.keep_choice)

    scheduler.start_embedded_if_serving(app)
    return app


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


ERROR_MESSAGES = {
    400: _l("The request could not be understood. Please go back, reload the page and try "
            "again."),
    404: _l("There is nothing here. The address may be mistyped, or the link may have "
            "expired."),
    405: _l("That action is not available at this address."),
    410: _l("This session no longer takes sign-ups."),
    413: _l("What was sent is far larger than this form accepts."),
    429: _l("Too many attempts from you in a short time. Please wait a little and try again."),
    503: _l("The site is very busy or its database can't be reached just now. Nothing was "
            "changed; please try again in a minute."),
    500: _l("Something went wrong on our side. Nothing you did caused it; please try again "
            "later."),
}
ERROR_HEADINGS = {
    404: _l("Page not found"),
    410: _l("Sign-up closed"),
    429: _l("Please slow down"),
    500: _l("Sorry, there is a problem with the service"),
}


def error_heading(code: int) -> str:
    """The error page's heading (and title), by status."""
    if code >= 500:
        return ERROR_HEADINGS[500]
    return ERROR_HEADINGS.get(code, _l("Something is not right"))


def _register_error_pages(app):
    from api import problems

    def render_error(code, message):
        if problems.wanted():
            # Under /api every error is problem details in JSON, never an HTML page.
            return problems.problem(code)
        return render_template("error.html", code=code, heading=error_heading(code),
                               message=message), code

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_error(
            400,
            _("The form had expired or was not sent from this site. "
              "Please go back, reload the page and send it again."),
        )

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if problems.wanted():
            return problems.from_http_exception(exc)
        code = exc.code or 500
        # A view's own words for the person, except the limiter's, which are for machines.
        if code != 429 and exc.description != type(exc).description:
            return render_error(code, exc.description)
        return render_error(code, ERROR_MESSAGES.get(code, exc.description))

    @app.errorhandler(sa.exc.DBAPIError)
    def database_error(exc):
        # A database that is down, slow or locked (OperationalError: a time-out, a refused
        # connection) is a 503 to retry; anything else is a bug (500). Either way the log gets
        # the traceback and the kind of error, never its message (see describe_database_error).
        unavailable = isinstance(exc, sa.exc.OperationalError)
        if app.testing and not unavailable:
            raise exc
        if unavailable:  # an outage: one line per request, not a traceback each
            app.logger.error("database unavailable: %s", describe_database_error(exc))
        else:
            app.logger.error("database error: %s\n%s", describe_database_error(exc),
                             "".join(traceback.format_tb(exc.__traceback__)).rstrip())
        db.session.rollback()
        code = 503 if unavailable else 500
        return render_error(code, ERROR_MESSAGES[code])

    @app.errorhandler(Exception)
    def unexpected_error(exc):
        if app.testing:
            raise exc
        app.logger.exception("unhandled error")
        return render_error(500, ERROR_MESSAGES[500])


if __name__ == "__main__":  # pragma: no cover
    sys.exit("Run the app with `flask run` (see README.md).")
