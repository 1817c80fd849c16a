"""The floor for a sign-up: a bare WSGI app (no Flask) serving a form with a signed token and
storing each POST with one INSERT. bench/signup.py runs it under the same gunicorn settings as ours.

Settings from the environment, as for the app: DATABASE_URL (sqlite:///… or postgresql://…) and
SECRET_KEY. The table comes from create_schema(), run once by the benchmark before serving.
"""

import hashlib
import hmac
import html
import os
import secrets
import sqlite3
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

FIELDS = ("name", "email", "organisation", "affiliation", "country", "timezone", "language")
MAX_BODY = 65536
INSERT = ("INSERT INTO signups (event_slug, name, email, organisation, affiliation, country, "
          "timezone, language) VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0}, {0})")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign up</title></head><body>
<h1>Sign up for {slug}</h1>
<form method="post" action="/events/{slug}/register">
<input id="csrf_token" name="csrf_token" type="hidden" value="{token}">
<label>Full name <input name="name" required></label>
<label>Email <input name="email" type="email" required></label>
<label>Organisation <input name="organisation" required></label>
<select name="affiliation"><option value="local_government">Local government</option></select>
<select name="country"><option value="JP">Japan</option></select>
<input type="hidden" name="timezone" value="UTC">
<select name="language"><option value="en">English</option></select>
<input name="website" value="">
<label><input type="checkbox" name="consent" value="y" required> I accept</label>
<button type="submit">Sign up</button>
</form></body></html>
"""


def _scheme(url):
    return url.split(":", 1)[0].split("+", 1)[0]


def _sqlite_path(url):
    return url.split(":///", 1)[1]


def _psycopg_conninfo(url):
    return "postgresql:" + url.split(":", 1)[1]


def connect(url):
    """A connection set up like the app's: SQLite in WAL with a busy timeout, or psycopg 3."""
    if _scheme(url) == "sqlite":
        # Autocommit at the driver level, so that we can open write transactions with
        # BEGIN IMMEDIATE ourselves, as the app does.
        connection = sqlite3.connect(_sqlite_path(url), isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection
    import psycopg

    # One statement per sign-up, so autocommit makes it one transaction, committed once.
    return psycopg.connect(_psycopg_conninfo(url), autocommit=True)


def create_schema(url):
    """Create the baseline's one table (idempotent)."""
    key = ("INTEGER PRIMARY KEY" if _scheme(url) == "sqlite"
           else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    connection = connect(url)
    try:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS signups (id {key}, event_slug TEXT NOT NULL, "
            "name TEXT NOT NULL, email TEXT NOT NULL, organisation TEXT NOT NULL, "
            "affiliation TEXT NOT NULL, country TEXT NOT NULL, timezone TEXT NOT NULL, "
            "language TEXT NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
    finally:
        connection.close()


def count_signups(url):
    """How many sign-ups the baseline has stored."""
    connection = connect(url)
    try:
        return connection.execute("SELECT count(*) FROM signups").fetchone()[0]
    finally:
        connection.close()


class Store:
    """This worker process's one database connection, opened on first use (after the fork)."""

    def __init__(self, url):
        self.url = url
        self.is_sqlite = _scheme(url) == "sqlite"
        self.insert_sql = INSERT.format("?" if self.is_sqlite else "%s")
        self._connection = None
        self._pid = None

    def _get(self):
        if self._connection is None or self._pid != os.getpid():
            self._connection = connect(self.url)
            self._pid = os.getpid()
        return self._connection

    def ping(self):
        self._get().execute("SELECT 1").fetchone()

    def insert(self, slug, values):
        connection = self._get()
        params = (slug, *(values[name] for name in FIELDS))
        if not self.is_sqlite:
            connection.execute(self.insert_sql, params)
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(self.insert_sql, params)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def _sign(key, value):
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def make_app(url, secret_key):
    """The WSGI callable: GET /events/<slug>, POST /events/<slug>/register, GET /healthz."""
    key = secret_key.encode()
    store = Store(url)

    def respond(start_response, status, body=b"", headers=()):
        start_response(status, [("Content-Type", "text/html; charset=utf-8"),
                                ("Content-Length", str(len(body))), *headers])
        return [body]

    def event_page(environ, start_response, slug):
        # A signed random session id in the cookie and a token derived from it in the form:
        # the same round trip as Flask-WTF's, with none of its machinery.
        session_id = secrets.token_urlsafe(16)
        cookie = f"bsession={session_id}.{_sign(key, session_id)}; HttpOnly; Path=/; SameSite=Lax"
        body = PAGE.format(slug=html.escape(slug), token=_sign(key, "csrf:" + session_id))
        return respond(start_response, "200 OK", body.encode(), [("Set-Cookie", cookie)])

    def register(environ, start_response, slug):
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", "")).get("bsession")
        session_id, _, signature = (cookie.value if cookie else "").partition(".")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            return respond(start_response, "413 Content Too Large")
        form = {k: v[0] for k, v in parse_qs(environ["wsgi.input"].read(length).decode()).items()}
        if not (session_id
                and hmac.compare_digest(signature, _sign(key, session_id))
                and hmac.compare_digest(form.get("csrf_token", ""),
                                        _sign(key, "csrf:" + session_id))):
            return respond(start_response, "400 Bad Request", b"bad or missing token")
        values = {name: form.get(name, "").strip() for name in FIELDS}
        if not all(values.values()) or form.get("consent") != "y":
            return respond(start_response, "422 Unprocessable Content", b"missing fields")
        if not form.get("website"):
            store.insert(slug, values)
        return respond(start_response, "303 See Other",
                       headers=[("Location", f"/events/{slug}/registered")])

    def application(environ, start_response):
        method = environ["REQUEST_METHOD"]
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if method == "GET" and parts == ["healthz"]:
            store.ping()
            return respond(start_response, "200 OK", b"ok")
        if len(parts) >= 2 and parts[0] == "events":
            if method == "GET" and len(parts) == 2:
                return event_page(environ, start_response, parts[1])
            if method == "POST" and len(parts) == 3 and parts[2] == "register":
                return register(environ, start_response, parts[1])
        return respond(start_response, "404 Not Found", b"not found")

    return application


def create_app():
    """The app configured from the environment, for gunicorn's 'signup_app:create_app()'."""
    return make_app(os.environ["DATABASE_URL"], os.environ["SECRET_KEY"])
