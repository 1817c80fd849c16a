"""Many people sign up for the last seats at the same moment, over real HTTP through several
gunicorn workers, on SQLite and on PostgreSQL: nobody sees an error, no seat is given twice, and
a session cancelled in the middle of it takes nobody it turned away."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from notifications.planner import CONFIRMATIONS_PER_DAY
from registration.models import Event, Registration
from tests.conftest import (
    CSRF_RE,
    ORGANISER_EMAIL,
    ORGANISER_PASSWORD,
    form_data,
    make_event,
)
from tests.servers import GunicornServer
from tests.test_organisers_events import form_of

WORKERS = 4
HTTP_TIMEOUT = 30  # seconds; a request that takes this long has hung (the race takes a few)


@pytest.fixture
def server(database_url, tmp_path):
    """The app under gunicorn with several sync workers, as in production, on the test database."""
    server = GunicornServer("app:create_app()", workers=WORKERS,
                            log_path=tmp_path / "gunicorn.log")
    server.start({
        "DATABASE_URL": database_url,
        "SECRET_KEY": "race-test-secret-key",
        "BASE_URL": server.url,
        "SCHEDULER": "off",
        # Every client comes from 127.0.0.1; the per-IP limit would turn most of them away.
        "RATELIMIT_ENABLED": "false",
        "MAIL_BACKEND": "file",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    })
    yield server
    server.stop()


def create_event(**fields) -> tuple[int, str]:
    """Add an event a month from now (the server reads the real clock); return its id and slug."""
    now = datetime.now(UTC)
    event = make_event(starts_at=now + timedelta(days=30), created_at=now, updated_at=now,
                       **fields)
    event_id, slug = event.id, event.slug
    # Reading event.id opened a transaction, and on SQLite every transaction holds the write
    # lock (BEGIN IMMEDIATE): end it, or every worker waits for it.
    db.session.remove()
    return event_id, slug


def _sign_up_together(base_url, slug, barrier, fields):
    """One browser: load the form, wait for the others, then send it with its own cookie."""
    with requests.Session() as browser:
        try:
            page = browser.get(f"{base_url}/events/{slug}", timeout=HTTP_TIMEOUT)
            assert page.status_code == 200, (page.status_code, page.text[:500])
            token = CSRF_RE.search(page.text)
            assert token, "no csrf_token in the form"
            data = form_data(csrf_token=token.group(1), **fields)
            barrier.wait(timeout=HTTP_TIMEOUT)
        except BaseException:
            barrier.abort()  # the others would otherwise wait for this one until time-out
            raise
        return browser.post(f"{base_url}/events/{slug}/register", data=data,
                            allow_redirects=False, timeout=HTTP_TIMEOUT)


def sign_up_at_once(base_url, slug, people):
    """Sign up each person (a dict of form fields) from its own session, all POSTs at once."""
    barrier = threading.Barrier(len(people))
    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        futures = [pool.submit(_sign_up_together, base_url, slug, barrier, fields)
                   for fields in people]
        return [future.result() for future in futures]


def assert_all_redirected_to_thank_you(responses, slug):
    """Every POST answered 303 to the thank-you page: no 500, no 'database is locked'."""
    failures = [(r.status_code, r.text[:300]) for r in responses if r.status_code != 303]
    assert not failures, failures
    assert all(r.headers["Location"].endswith(f"/events/{slug}/registered") for r in responses)


def assert_server_logged_no_error(server):
    log = server.log_text()
    assert "Traceback" not in log and "database is locked" not in log, log


def test_fifty_people_racing_for_five_seats_fill_them_and_queue_the_rest(server, app):
    event_id, slug = create_event(slug="last-five-seats", capacity=5)
    people = [{"name": f"Attendee {i}", "email": f"attendee-{i:02d}@example.org"}
              for i in range(50)]

    responses = sign_up_at_once(server.url, slug, people)

    assert_all_redirected_to_thank_you(responses, slug)
    assert_server_logged_no_error(server)
    statuses = Counter(db.session.scalars(
        sa.select(Registration.status).where(Registration.event_id == event_id)
    ))
    assert statuses == {"confirmed": 5, "waitlisted": 45}
    assert db.session.get(Event, event_id).confirmed_count == 5
    # One sign-up email per person, and the right one: an invite for a seat, a notice for the
    # queue. (Seat holders' reminders are rows too; only seat holders may have them.)
    queued = Counter(tuple(row) for row in db.session.execute(
        sa.select(Message.kind, Registration.status)
        .join(Registration, Message.registration_id == Registration.id)
        .where(Message.event_id == event_id)
    ))
    signup_emails = {key: n for key, n in queued.items() if key[0] != "reminder"}
    assert signup_emails == {("confirmation", "confirmed"): 5, ("waitlisted", "waitlisted"): 45}
    assert {status for kind, status in queued if kind == "reminder"} <= {"confirmed"}
    assert db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Message.recipient)))
        .where(Message.kind.in_(("confirmation", "waitlisted")))
    ) == 50


def test_one_person_sending_the_form_ten_times_at_once_is_registered_once(server, app):
    event_id, slug = create_event(slug="double-clicked", capacity=5)
    # The same person, the address typed in two ways that are the same mailbox.
    people = [{"email": "aiko.tanaka@example.org" if i % 2 else "Aiko.Tanaka@Example.org"}
              for i in range(10)]

    responses = sign_up_at_once(server.url, slug, people)

    assert_all_redirected_to_thank_you(responses, slug)
    assert_server_logged_no_error(server)
    [registration] = db.session.scalars(
        sa.select(Registration).where(Registration.event_id == event_id)
    ).all()
    assert registration.status == "confirmed"
    assert db.session.get(Event, event_id).confirmed_count == 1
    # A repeat re-sends the confirmation, but never past the daily allowance, even at once.
    queued = db.session.execute(sa.select(Message.kind, Message.registration_id)).all()
    assert {row.registration_id for row in queued} == {registration.id}
    confirmations = [row for row in queued if row.kind == "confirmation"]
    assert len(confirmations) == CONFIRMATIONS_PER_DAY


def _cancel_together(base_url, slug, form, barrier):
    """The organiser's browser: signed in, on the event's page; cancels it with the others."""
    with requests.Session() as browser:
        try:
            login = browser.get(f"{base_url}/admin/login", timeout=HTTP_TIMEOUT)
            signed_in = browser.post(f"{base_url}/admin/login", data={
                "email": ORGANISER_EMAIL, "password": ORGANISER_PASSWORD,
                "csrf_token": CSRF_RE.search(login.text).group(1),
            }, allow_redirects=False, timeout=HTTP_TIMEOUT)
            assert signed_in.status_code == 303, signed_in.text[:500]
            page = browser.get(f"{base_url}/admin/events/{slug}", timeout=HTTP_TIMEOUT)
            data = {**form, "status": "cancelled", "confirm_cancel": "y",
                    "csrf_token": CSRF_RE.search(page.text).group(1)}
            barrier.wait(timeout=HTTP_TIMEOUT)
        except BaseException:
            barrier.abort()
            raise
        return browser.post(f"{base_url}/admin/events/{slug}", data=data,
                            allow_redirects=False, timeout=HTTP_TIMEOUT)


def test_sign_ups_racing_the_sessions_cancellation_get_a_seat_or_a_410_never_an_error(
        server, app, organiser):
    event_id, slug = create_event(slug="called-off-mid-race", capacity=20)
    form = form_of(db.session.get(Event, event_id))
    db.session.remove()  # no transaction of ours may hold SQLite's write lock meanwhile
    people = [{"name": f"Attendee {i}", "email": f"attendee-{i:02d}@example.org"}
              for i in range(60)]
    barrier = threading.Barrier(len(people) + 1)

    with ThreadPoolExecutor(max_workers=len(people) + 1) as pool:
        cancelling = pool.submit(_cancel_together, server.url, slug, form, barrier)
        futures = [pool.submit(_sign_up_together, server.url, slug, barrier, fields)
                   for fields in people]
        responses = [future.result() for future in futures]
        cancelled = cancelling.result()

    assert cancelled.status_code == 303, cancelled.text[:500]
    assert_server_logged_no_error(server)
    answers = Counter(r.status_code for r in responses)
    assert set(answers) <= {303, 410}, [(r.status_code, r.text[:300]) for r in responses]
    assert all("was cancelled" in r.text for r in responses if r.status_code == 410)
    accepted = {person["email"] for person, r in zip(people, responses, strict=True)
                if r.status_code == 303}
    stored = set(db.session.scalars(
        sa.select(Registration.email).where(Registration.event_id == event_id)))
    assert stored == accepted
    assert db.session.get(Event, event_id).status == "cancelled"


def _sign_up_for_several_together(base_url, slugs, barrier, fields):
    """One browser on the form for several sessions: load it, wait, then send it."""
    with requests.Session() as browser:
        try:
            page = browser.get(f"{base_url}/signup", params={"event": slugs},
                               timeout=HTTP_TIMEOUT)
            assert page.status_code == 200, (page.status_code, page.text[:500])
            data = {**form_data(csrf_token=CSRF_RE.search(page.text).group(1), **fields),
                    "event": slugs}
            barrier.wait(timeout=HTTP_TIMEOUT)
        except BaseException:
            barrier.abort()
            raise
        return browser.post(f"{base_url}/signup", data=data, allow_redirects=False,
                            timeout=HTTP_TIMEOUT)


def test_thirty_people_choosing_the_same_two_sessions_at_once_fill_five_seats_in_each(
        server, app):
    # Each submission locks both sessions; taken in the same order by everyone, they can't
    # deadlock on PostgreSQL.
    first_id, first = create_event(slug="pair-first", capacity=5)
    second_id, second = create_event(slug="pair-second", capacity=5)
    people = [{"name": f"Attendee {i}", "email": f"attendee-{i:02d}@example.org"}
              for i in range(30)]
    barrier = threading.Barrier(len(people))

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        # Half of them tick the sessions in the other order.
        futures = [pool.submit(_sign_up_for_several_together, server.url,
                               [first, second] if i % 2 else [second, first], barrier, fields)
                   for i, fields in enumerate(people)]
        responses = [future.result() for future in futures]

    failures = [(r.status_code, r.text[:300]) for r in responses if r.status_code != 303]
    assert not failures, failures
    assert all(r.headers["Location"].endswith("/signup/done") for r in responses)
    assert_server_logged_no_error(server)
    for event_id in (first_id, second_id):
        statuses = Counter(db.session.scalars(
            sa.select(Registration.status).where(Registration.event_id == event_id)))
        assert statuses == {"confirmed": 5, "waitlisted": 25}, event_id
        assert db.session.get(Event, event_id).confirmed_count == 5
        signup_emails = Counter(db.session.scalars(
            sa.select(Message.kind).where(Message.event_id == event_id,
                                          Message.kind != "reminder")))
        assert signup_emails == {"confirmation": 5, "waitlisted": 25}
