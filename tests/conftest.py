"""Fixtures: an app on a fresh, migrated database per test, on SQLite and (when
TEST_DATABASE_URL is set) on PostgreSQL; a test client; helpers to make events and sign up."""

import email
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g, has_app_context
from flask.testing import FlaskClient

from app import create_app
from extensions import db
from tests.chromium import missing_browser
from tests.smtp_servers import SMTPServer

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
NOW = datetime(2025, 6, 20, 9, 0, tzinfo=UTC)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set"),
    ),
]


def _psycopg_url(url: str) -> str:
    scheme, rest = url.split(":", 1)
    return "postgresql+psycopg:" + rest if scheme in ("postgresql", "postgres") else url


def migrate(url: str, tmp_path) -> None:
    """Bring a database to the newest migration."""
    app = create_app(base_config(url, tmp_path))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()


def base_config(database_url: str, tmp_path) -> dict:
    """Settings for a test app, as the environment would give them, plus test-only flags."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "BASE_URL": "http://forum.example.org",
        "MAIL_BACKEND": "file",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MAIL_FROM": "forum@example.org",
        # One SMTP conversation at a time, so that a test can follow messages in order; the
        # pool's own tests (test_notifications_pool.py) open several.
        "SMTP_CONNECTIONS": "1",
        "ORGANISER_EMAIL": "organisers@example.org",
        "SCHEDULER": "off",
        "RATELIMIT_ENABLED": "false",
        # Production hashes cost 0.4 s each; tests check that default once, and use a cheap one.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "CLOCK": lambda: NOW,
    }


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.sqlite3"
    migrate(f"sqlite:///{path}", folder)
    return path


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory):
    """A PostgreSQL database of our own for the whole run, migrated once and dropped at the end."""
    admin_url = _psycopg_url(TEST_DATABASE_URL)
    name = f"forum_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate(url, tmp_path_factory.mktemp("pg"))
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def fresh_database(request, backend: str, folder) -> str:
    """A migrated, empty database of this kind: a copy of the SQLite template in the folder,
    or the run's PostgreSQL database emptied."""
    if backend == "sqlite":
        path = folder / "forum.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(table.name for table in db.metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh, migrated, empty database of each kind."""
    return fresh_database(request, request.param, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(request, tmp_path_factory):
    """A fresh database of each kind shared by a module's tests (browser tests set up their data
    once and serve it from one server); no test of such a module may ask for database_url."""
    return fresh_database(request, request.param, tmp_path_factory.mktemp("module-db"))


class FreshGlobalsClient(FlaskClient):
    """A test client whose every request starts with an empty `g`, as in production.

    The fixtures keep an app context open so tests can use db.session; requests then reuse it,
    and without this `g` (Flask-WTF's cached CSRF token, the signed-in organiser) would leak
    from one request into the next.
    """

    def open(self, *args, **kwargs):
        # In production each request ends its transactions with its app context; here the
        # test's context (and session) lives on, and a GET's reading transaction with it (or a
        # streamed answer's, read after the request): end them, before and after.
        if has_app_context():
            for name in list(vars(g)):
                delattr(g, name)
            db.session.commit()
        response = super().open(*args, **kwargs)
        if has_app_context():
            db.session.commit()
        return response


def make_app(config):
    app = create_app(config)
    app.test_client_class = FreshGlobalsClient
    return app


@pytest.fixture
def app_with(database_url, tmp_path):
    """Make the app on this test's fresh database with some settings changed (as environment
    strings); use it as `with app_with(BASE_URL="https://…") as app:`, inside its context."""

    @contextmanager
    def make(**settings):
        app = make_app({**base_config(database_url, tmp_path), **settings})
        with app.app_context():
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()

    return make


@pytest.fixture
def app(app_with):
    """The app on a fresh database, the clock fixed at NOW."""
    with app_with() as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


ORGANISER_EMAIL = "anna.organiser@example.org"
ORGANISER_PASSWORD = "correct horse battery staple"


def make_organiser():
    """Add an organiser account (password ORGANISER_PASSWORD) to the current app's database."""
    from organisers import auth
    from organisers.models import Organiser

    account = Organiser(email=ORGANISER_EMAIL, password_hash=auth.hash_password(
        ORGANISER_PASSWORD), created_at=NOW)
    db.session.add(account)
    db.session.commit()
    return account


@pytest.fixture
def organiser(app):
    """An organiser account (password ORGANISER_PASSWORD)."""
    return make_organiser()


def log_in(client, email=ORGANISER_EMAIL, password=ORGANISER_PASSWORD, next=""):
    """Sign in through the login form, as a browser would; returns the response."""
    page = client.get("/admin/login").get_data(as_text=True)
    token = CSRF_RE.search(page).group(1)
    return client.post("/admin/login", data={"email": email, "password": password,
                                             "csrf_token": token, "next": next})


@pytest.fixture
def admin(client, organiser):
    """A test client signed in as the organiser."""
    response = log_in(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def page_csrf(client, path):
    """The CSRF token of the first form on a page (every POST of the console needs one)."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return CSRF_RE.search(page.get_data(as_text=True)).group(1)


def make_event(**fields):
    """Add an event (defaults: a webinar a month after NOW, no cap) and commit it."""
    from registration.models import Event

    starts_at = fields.pop("starts_at", NOW + timedelta(days=30))
    values = {
        "slug": "climate-finance-101",
        "title": "Climate finance 101",
        "kind": "webinar",
        "pillar": "exchange",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=1, minutes=30),
        "timezone": "Europe/Berlin",
        "capacity": None,
        "language": "en",
        "join_url": "https://meet.example.org/j/123456",
        "description": "How cities fund climate action.",
        "status": "scheduled",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    event = Event(**values)
    db.session.add(event)
    db.session.commit()
    return event


# The attendee of most tests, as the form and the registration row both spell her.
ATTENDEE = {
    "name": "Aiko Tanaka",
    "email": "aiko.tanaka@example.org",
    "organisation": "City of Yokohama",
    "affiliation": "local_government",
    "country": "JP",
    "timezone": "Asia/Tokyo",
    "language": "en",
}


def make_registration(event, **fields):
    """Add a registration (confirmed, Tokyo, English) without going through the form."""
    from registration import tokens
    from registration.models import Registration

    values = {
        "event": event,
        "status": "confirmed",
        **ATTENDEE,
        "registered_at": NOW,
        "confirmed_at": NOW,
        "consent_at": NOW,
        "consent_version": "2025-06",
        "ical_uid": f"{uuid.uuid4()}@forum-signup",
        "ical_sequence": 0,
    }
    values.update(fields)
    values.setdefault("email_key", values["email"].casefold())
    registration = Registration(**values)
    tokens.issue_token(registration)
    db.session.add(registration)
    db.session.flush()
    return registration


def database_time(seconds: int = 0) -> datetime:
    """The database's own clock (the one claim leases follow), plus some seconds."""
    from extensions import database_now

    return db.session.scalar(sa.select(database_now(seconds)))


def end_leases() -> None:
    """Let every claim's lease run out, as the database's clock moving on would."""
    from extensions import database_now
    from notifications.models import Message

    db.session.execute(sa.update(Message).where(Message.lease_until.is_not(None))
                       .values(lease_until=database_now(-1)))
    db.session.commit()


def dispatch_at(now, *args, **kwargs):
    """What each claim pass of the worker does at `now`: the reminders due then written, then
    one batch sent."""
    from notifications.dispatcher import dispatch
    from notifications.reminders import plan_and_commit

    plan_and_commit(now)
    return dispatch(now, *args, **kwargs)


def written_reminder(registration, position: int = 0):
    """The reminder row the dispatch step writes for the registration at the due time of its
    session's reminder at `position` (0: the first still ahead of its confirmation)."""
    from flask import current_app

    from notifications.models import Message
    from notifications.planner import reminder_slots
    from notifications.reminders import plan_due_reminders

    db.session.flush()
    slot = reminder_slots(registration.event.starts_at, current_app.config["REMINDER_OFFSETS"],
                          after=registration.confirmed_at)[position]
    plan_due_reminders(slot.due_at)
    return db.session.scalar(sa.select(Message).where(
        Message.registration_id == registration.id, Message.kind == "reminder",
        Message.due_at == slot.due_at))


def outbox(app):
    """Every email the file backend wrote, in the order they were sent, parsed as a mail
    client would. (File times are too coarse to order a batch: the outbox rows say it.)"""
    from notifications.models import Message

    folder = Path(app.config["MAIL_OUTBOX_DIR"])
    mails = [email.message_from_bytes(path.read_bytes(), policy=policy.default)
             for path in folder.glob("*.eml")]
    order = {
        message_id: (sent_at, due_at, row_id)
        for message_id, sent_at, due_at, row_id in db.session.execute(
            sa.select(Message.message_id, Message.sent_at, Message.due_at, Message.id)
        )
    }
    return sorted(mails, key=lambda mail: order[mail["Message-ID"]])


def signed_up(event=None, **fields):
    """A registration with its sign-up email queued, committed; returns the message row."""
    from notifications import planner

    registration = make_registration(event or make_event(), **fields)
    message = planner.queue_signup(registration, NOW, is_repeat=False)
    db.session.commit()
    return message


def row(message_id: int):
    """The outbox row as the database holds it now."""
    from notifications.models import Message

    return db.session.execute(
        sa.select(Message).where(Message.id == message_id)
        .execution_options(populate_existing=True)
    ).scalar_one()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, slug):
    """The CSRF token from the event page's form, as a browser would get it."""
    page = client.get(f"/events/{slug}")
    assert page.status_code == 200, page.status_code
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, "no csrf_token in the form"
    return match.group(1)


def form_data(**overrides):
    data = {
        **ATTENDEE,
        "consent": "y",
        "website": "",
    }
    data.update(overrides)
    return data


def sign_up(client, slug, **overrides):
    """POST the sign-up form with a valid CSRF token; returns the response."""
    data = form_data(**overrides)
    data.setdefault("csrf_token", csrf_token(client, slug))
    return client.post(f"/events/{slug}/register", data=data)


@contextmanager
def sending_through_smtp(app, **server_options):
    """A real SMTP server on a loopback port, and the app set to send through it; its handler."""
    with SMTPServer(**server_options) as server:
        app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=server.port,
                          SMTP_TIMEOUT_SECONDS=5)
        yield server.handler


@pytest.fixture
def smtp(app):
    """A real SMTP server on a loopback port, and the app set to send through it."""
    with sending_through_smtp(app) as handler:
        yield handler


# Without Chromium or Playwright the browser tests (tests/test_browser_*.py) are left out, and
# one line at the end of the run says so and how to enable them.
BROWSER_MISSING = missing_browser()
collect_ignore_glob = ["test_browser_*.py"] if BROWSER_MISSING else []


def pytest_terminal_summary(terminalreporter):
    if BROWSER_MISSING:
        terminalreporter.write_line(f"Browser tests left out: {BROWSER_MISSING}")
