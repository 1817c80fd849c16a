"""The floor for a sign-up in Flask: the least a Flask app does for the same exchange as ours.

GET /events/<slug> puts a random CSRF token (secrets) in Flask's own signed cookie session and
in the form; POST /events/<slug>/register checks it, makes one INSERT into a table of its own
and answers 303. No templates, forms library or ORM: those are what the ratio to this floor
measures. bench/signup.py serves it under the same gunicorn settings as ours, on the same
database (a SQLite file of its own, or the same PostgreSQL database as ours).

Settings from the environment, as for the app: DATABASE_URL and SECRET_KEY. The table comes
from create_schema(), run once by the benchmark before serving.
"""

import html
import os
import secrets

from flask import Flask, abort, redirect, request, session
from signup_app import FIELDS, PAGE, connect

TABLE = "flask_floor_signups"


def create_schema(url):
    """Create the floor's one table (idempotent)."""
    key = ("INTEGER PRIMARY KEY" if url.startswith("sqlite")
           else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    connection = connect(url)
    try:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id {key}, event_slug TEXT NOT NULL, "
            + "".join(f"{name} TEXT NOT NULL, " for name in FIELDS)
            + "created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    finally:
        connection.close()


def count_signups(url):
    """How many sign-ups the floor has stored."""
    connection = connect(url)
    try:
        return connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    finally:
        connection.close()


def create_app():
    """The Flask app configured from the environment, for gunicorn's 'flask_floor:create_app()'."""
    app = Flask(__name__)
    app.secret_key = os.environ["SECRET_KEY"]
    url = os.environ["DATABASE_URL"]
    is_sqlite = url.startswith("sqlite")
    placeholder = "?" if is_sqlite else "%s"
    insert = (f"INSERT INTO {TABLE} (event_slug, {', '.join(FIELDS)}) VALUES "
              f"({', '.join([placeholder] * (len(FIELDS) + 1))})")

    held = []  # this worker process's one connection, opened on first use (after the fork)

    def database():
        # Ours keeps a pool on both databases, so the floor keeps one connection per worker
        # process rather than opening one per request as Flask's tutorial does.
        if not held or (not is_sqlite and held[0].closed):
            held[:] = [connect(url)]
        return held[0]

    @app.get("/healthz")
    def healthz():
        database().execute("SELECT 1").fetchone()
        return "ok"

    @app.get("/events/<slug>")
    def event_page(slug):
        session["csrf"] = token = secrets.token_urlsafe(32)
        return PAGE.format(slug=html.escape(slug), token=token)

    @app.post("/events/<slug>/register")
    def register(slug):
        expected = session.get("csrf")
        if not expected or not secrets.compare_digest(request.form.get("csrf_token", ""),
                                                      expected):
            abort(400)
        values = [request.form.get(name, "").strip() for name in FIELDS]
        if not all(values) or request.form.get("consent") != "y":
            abort(422)
        if not request.form.get("website"):
            connection = database()
            if is_sqlite:
                # As the app does: a write transaction that takes the lock at BEGIN.
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.execute(insert, (slug, *values))
                except BaseException:
                    connection.execute("ROLLBACK")  # the connection outlives the request
                    raise
                connection.execute("COMMIT")
            else:
                connection.execute(insert, (slug, *values))  # autocommit: one transaction
        return redirect(f"/events/{slug}/registered", code=303)

    return app
