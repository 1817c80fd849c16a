"""A reschedule of a session with 10,000 registrants, through the console, on PostgreSQL.

A fresh migrated database gets one session with --registrants confirmed seat holders, each
with its confirmation sent, as a sign-up leaves them (reminders are written when they fall
due, a week before the start at the earliest), made with bulk Core inserts, so the set-up
takes seconds. An organiser signs in to our app under gunicorn (one sync worker, its
--timeout raised so a slow POST is measured rather than killed) and POSTs the console's edit
form with the start and end one day later. Prints the POST's wall time (aim < 2 s), how many
update emails it queued (aim: one per registrant) and whether they were written in the same
transaction as the event's new time (one PostgreSQL xmin for all of them). Then, for scale,
the floor: the same writes as three set-based statements in one transaction, rolled back.
Skipped with one line when PostgreSQL is not reachable.

    .venv/bin/python bench/reschedule.py [--registrants 10000]
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import requests  # noqa: E402

from bench.support.databases import database_url, postgres_admin, quiet  # noqa: E402
from tests.servers import GunicornServer  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "bench-secret-key-" + uuid.uuid4().hex
ORGANISER = "bench.organiser@example.org"
PASSWORD = "bench password, long enough"
SLUG = "bench-reschedule"
AIM_SECONDS = 2.0
POST_TIMEOUT = 600  # gunicorn's --timeout and the client's: the POST is measured, never cut
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _env(url, workdir):
    return {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "SCHEDULER": "off",
            "MAIL_BACKEND": "file", "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
            "MAIL_FROM": "forum@example.org", "RATELIMIT_ENABLED": "false",
            # A cheap hash: the sign-in is not what is measured.
            "PASSWORD_HASH_METHOD": "scrypt:1024:8:1"}


def prepare(url, workdir, registrants):
    """Migrate; add the session, an organiser, the registrants and their messages. Returns the
    form's fields with the start and end moved one day later."""
    import flask_migrate
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.models import Message
    from organisers import auth
    from organisers.models import Organiser
    from registration import tokens
    from registration.models import Event, Registration
    from registration.programme_export import event_cells

    app = create_app(_env(url, workdir))
    with app.app_context():
        quiet(flask_migrate.upgrade)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        event = Event(slug=SLUG, title="Benchmark session: climate finance", kind="webinar",
                      pillar="exchange", starts_at=now + timedelta(days=30),
                      ends_at=now + timedelta(days=30, hours=1), timezone="Europe/Berlin",
                      capacity=None, language="en", join_url="https://meet.example.org/j/1",
                      description="Load test.", status="scheduled", created_at=now,
                      updated_at=now)
        db.session.add(event)
        db.session.add(Organiser(email=ORGANISER, created_at=now,
                                 password_hash=auth.hash_password(PASSWORD)))
        db.session.flush()
        rows = []
        for n in range(registrants):
            holder = Registration()  # transient: only carries the link's nonce and digest
            tokens.issue_token(holder)
            rows.append({
                "event_id": event.id, "status": "confirmed", "name": f"Attendee {n}",
                "email": f"attendee{n}@example.org", "email_key": f"attendee{n}@example.org",
                "organisation": "City of Yokohama", "affiliation": "local_government",
                "country": "JP", "timezone": "Asia/Tokyo", "language": "ja" if n % 4 else "en",
                "registered_at": now, "confirmed_at": now, "consent_at": now,
                "consent_version": "2025-06", "token_nonce": holder.token_nonce,
                "token_digest": holder.token_digest,
                "ical_uid": f"{uuid.uuid4()}@forum-signup", "ical_sequence": 0})
        ids = db.session.scalars(sa.insert(Registration).returning(
            Registration.id, sort_by_parameter_order=True), rows).all()
        db.session.expunge_all()
        messages = []
        for registration_id, row in zip(ids, rows, strict=True):
            base = {"registration_id": registration_id, "event_id": event.id,
                    "recipient": row["email"]}
            messages.append({**base, "kind": "confirmation", "status": "sent",
                             "ical_method": "REQUEST", "ical_sequence": 0, "created_at": now,
                             "due_at": now, "sent_at": now, "expires_at": event.ends_at,
                             "message_id": f"<{uuid.uuid4().hex}@example.org>"})
        for start in range(0, len(messages), 10_000):
            db.session.execute(sa.insert(Message), messages[start:start + 10_000])
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
        event = db.session.scalar(sa.select(Event).where(Event.slug == SLUG))
        event.starts_at += timedelta(days=1)
        event.ends_at += timedelta(days=1)
        cells = event_cells(event)
        db.session.rollback()
        db.engine.dispose()
    return cells


def _sign_in(session, base_url):
    page = session.get(base_url + "/admin/login", timeout=30).text
    response = session.post(base_url + "/admin/login", timeout=30, allow_redirects=False,
                            data={"email": ORGANISER, "password": PASSWORD,
                                  "csrf_token": CSRF_RE.search(page).group(1)})
    if response.status_code != 303:
        raise RuntimeError(f"sign-in answered {response.status_code}")


def reschedule_over_http(url, workdir, cells):
    """Serve the app, sign in, GET the event's page, POST the form; (status, seconds)."""
    server = GunicornServer("app:create_app()", workers=1,
                            extra_args=["--timeout", str(POST_TIMEOUT)],
                            log_path=workdir / "gunicorn.log")
    server.start({**_env(url, workdir), "BASE_URL": server.url})
    try:
        session = requests.Session()
        _sign_in(session, server.url)
        page = session.get(f"{server.url}/admin/events/{SLUG}", timeout=60).text
        form = {**cells, "csrf_token": CSRF_RE.search(page).group(1)}
        started = time.perf_counter()
        response = session.post(f"{server.url}/admin/events/{SLUG}", data=form,
                                allow_redirects=False, timeout=POST_TIMEOUT)
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    # Flask logs an unhandled error as "Exception on <path>"; a traceback of the worker's own
    # SystemExit when stop() ends it is not one.
    errors = [marker for marker in ("Exception on", "WORKER TIMEOUT")
              if marker in server.log_text()]
    return response.status_code, seconds, errors


def outcome(url):
    """What the POST wrote: update emails, their transactions, and the event's transaction."""
    import psycopg

    with psycopg.connect(url) as conn:
        updates, transactions, in_event_xact = conn.execute(
            "SELECT count(*), count(DISTINCT m.xmin::text), "
            "count(*) FILTER (WHERE m.xmin::text = e.xmin::text) "
            "FROM messages m JOIN events e ON e.id = m.event_id "
            "WHERE e.slug = %s AND m.kind = 'update' AND m.status = 'pending'", (SLUG,)).fetchone()
        by_status = dict(conn.execute(
            "SELECT m.kind || ' ' || m.status, count(*) FROM messages m "
            "GROUP BY 1 ORDER BY 1").fetchall())
    return updates, transactions, in_event_xact, by_status


# The floor: the same writes as set-based SQL: the event moved, every pending message
# superseded, each seat holder's invite version raised, one update email each, and the
# superseded reminders planned again one day later.
FLOOR_SQL = (
    "UPDATE events SET starts_at = starts_at + interval '1 day', ends_at = ends_at "
    " + interval '1 day', ical_sequence = ical_sequence + 1 WHERE slug = %(slug)s",
    "UPDATE messages SET status = 'skipped', skip_reason = 'superseded' FROM events e "
    " WHERE e.id = messages.event_id AND e.slug = %(slug)s AND messages.status = 'pending'",
    "UPDATE registrations SET ical_sequence = registrations.ical_sequence + 1 FROM events e "
    " WHERE e.id = registrations.event_id AND e.slug = %(slug)s",
    "INSERT INTO messages (registration_id, event_id, kind, status, message_id, recipient, "
    " ical_method, ical_sequence, created_at, due_at, expires_at, attempts) "
    " SELECT r.id, e.id, 'update', 'pending', '<' || gen_random_uuid() || '@example.org>', "
    " r.email, 'REQUEST', r.ical_sequence, now(), now(), e.ends_at, 0 "
    " FROM registrations r JOIN events e ON e.id = r.event_id "
    " WHERE e.slug = %(slug)s AND r.status = 'confirmed'",
    "INSERT INTO messages (registration_id, event_id, kind, status, message_id, recipient, "
    " ical_method, ical_sequence, created_at, due_at, expires_at, attempts, detail) "
    " SELECT m.registration_id, m.event_id, 'reminder', 'pending', "
    " '<' || gen_random_uuid() || '@example.org>', m.recipient, m.ical_method, "
    " m.ical_sequence + 1, now(), m.due_at + interval '1 day', "
    " m.expires_at + interval '1 day', 0, m.detail FROM messages m JOIN events e "
    " ON e.id = m.event_id WHERE e.slug = %(slug)s AND m.kind = 'reminder' "
    " AND m.skip_reason = 'superseded'",
)


def floor(url):
    """Seconds of the floor's statements in one transaction, rolled back; rows inserted."""
    import psycopg

    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.transaction(force_rollback=True):
            counts = [conn.execute(sql, {"slug": SLUG}).rowcount for sql in FLOOR_SQL]
        return time.perf_counter() - started, counts[3]


def main(argv=None):
    """Prepare, measure the floor, reschedule through the console, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--registrants", type=int, default=10_000)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL",
                                                              DEFAULT_ADMIN_URL))
    options = parser.parse_args(argv)
    admin = postgres_admin(options.admin_url)
    if admin is None:
        print("reschedule: skipped, it measures PostgreSQL only.")
        return 0
    name = f"bench_reschedule_{uuid.uuid4().hex[:10]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-reschedule-"))
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = database_url(options.admin_url, name)
        started = time.perf_counter()
        cells = prepare(url, workdir, options.registrants)
        print(f"PostgreSQL: {options.registrants:,} confirmed registrants, each with a sent "
              f"confirmation (reminders are written when due), set up in "
              f"{time.perf_counter() - started:.1f} s; gunicorn --workers 1 (sync, --timeout "
              f"{POST_TIMEOUT}); {os.cpu_count()} CPUs shared by client, server and database.",
              flush=True)
        floor_s, floor_rows = floor(url)
        status, seconds, errors = reschedule_over_http(url, workdir, cells)
        updates, transactions, in_event_xact, by_status = outcome(url)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(workdir, ignore_errors=True)
    aim_met = status == 303 and seconds < AIM_SECONDS
    queued_met = updates == options.registrants and transactions == 1 and in_event_xact == updates
    print()
    print(f"console POST /admin/events/{SLUG} (start and end one day later): {status} in "
          f"{seconds:.2f} s   aim < {AIM_SECONDS:g} s: {'met' if aim_met else 'missed'}")
    print(f"update emails queued: {updates:,} of {options.registrants:,}, written in "
          f"{transactions} transaction(s), {in_event_xact:,} in the event's own   aim: all, in "
          f"one: {'met' if queued_met else 'missed'}")
    print(f"floor ({len(FLOOR_SQL)} set-based statements, one transaction, rolled back): "
          f"{floor_s:.2f} s for "
          f"{floor_rows:,} update emails; ours/floor time {seconds / floor_s:.1f}×")
    print(f"messages after: {by_status}")
    for error in errors:
        print(f"server log: {error}")
    print("Aims are reported, never enforced: a missed aim does not fail the build.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
