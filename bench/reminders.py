"""The planning step before each claim pass: how long it takes to write one session's reminder
for --registrants seat holders, and what the passes after it cost, on SQLite and PostgreSQL.

A fresh migrated database gets one session a week and an hour away, with its seat holders
made by bulk Core inserts. Timed: a pass with nothing due (the usual tick), the pass at the
week reminder's due time (one INSERT … SELECT writing a row each), a pass a minute later (the
same statement, every row already there), and one after the slot settled (no statement over
the seat holders). Floor: the same rows as one bare INSERT … SELECT with no conflict guard.

    .venv/bin/python bench/reminders.py [--registrants 10000]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support.databases import database_url, postgres_admin, quiet  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _env(url, workdir):
    return {"DATABASE_URL": url, "SECRET_KEY": "bench-" + uuid.uuid4().hex, "SCHEDULER": "off",
            "MAIL_BACKEND": "file", "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
            "MAIL_FROM": "forum@example.org", "REMINDER_OFFSETS": "7d,1d,1h"}


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def measure(url, workdir, registrants):
    """Seconds and rows of each pass, and of the floor."""
    import flask_migrate
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.reminders import SETTLED_AFTER, plan_and_commit
    from registration import tokens
    from registration.models import Event, Registration

    app = create_app(_env(url, workdir))
    with app.app_context():
        quiet(flask_migrate.upgrade)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        event = Event(slug="bench-reminders", title="Benchmark", kind="webinar",
                      starts_at=now + timedelta(days=7, hours=1),
                      ends_at=now + timedelta(days=7, hours=2), timezone="UTC", language="en",
                      description="", status="scheduled", created_at=now, updated_at=now)
        db.session.add(event)
        db.session.flush()
        rows = []
        for n in range(registrants):
            holder = Registration()
            tokens.issue_token(holder)
            rows.append({
                "event_id": event.id, "status": "confirmed", "name": f"Attendee {n}",
                "email": f"attendee{n}@example.org", "email_key": f"attendee{n}@example.org",
                "organisation": "City", "affiliation": "ngo", "country": "JP",
                "timezone": "Asia/Tokyo", "language": "en", "registered_at": now,
                "confirmed_at": now, "consent_at": now, "consent_version": "2025-06",
                "token_nonce": holder.token_nonce, "token_digest": holder.token_digest,
                "ical_uid": f"{uuid.uuid4()}@forum-signup", "ical_sequence": 0})
        db.session.execute(sa.insert(Registration), rows)
        db.session.commit()
        due = event.starts_at - timedelta(days=7)
        figures = {
            "nothing due": _timed(plan_and_commit, now),
            "week reminder due": _timed(plan_and_commit, due),
            "a minute later": _timed(plan_and_commit, due + timedelta(minutes=1)),
            "settling": _timed(plan_and_commit, due + SETTLED_AFTER),
            "settled": _timed(plan_and_commit, due + SETTLED_AFTER + timedelta(minutes=1)),
        }
        floor_sql = sa.text(
            "INSERT INTO messages (registration_id, event_id, kind, status, message_id, "
            "recipient, ical_sequence, created_at, due_at, expires_at, attempts) "
            "SELECT id, event_id, 'reminder', 'pending', 'floor' || id, email, ical_sequence, "
            ":t, :t, :t, 0 FROM registrations WHERE event_id = :e"
        ).bindparams(sa.bindparam("t", type_=sa.DateTime()))
        figures["floor"] = _timed(lambda: (db.session.execute(
            floor_sql, {"t": due.replace(tzinfo=None), "e": event.id}).rowcount,
            db.session.rollback())[0])
        db.session.remove()
        db.engine.dispose()
    return figures


def main(argv=None):
    """Measure on SQLite, then PostgreSQL when it answers; print one line per pass."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--registrants", type=int, default=10_000)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL",
                                                              DEFAULT_ADMIN_URL))
    options = parser.parse_args(argv)
    print(f"reminder planning, one session with {options.registrants:,} seat holders; "
          f"{os.cpu_count()} CPUs shared with everything else running.")
    workdir = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    try:
        results = {"sqlite": measure(f"sqlite:///{workdir}/bench.sqlite3", workdir,
                                     options.registrants)}
        admin = postgres_admin(options.admin_url)
        if admin is None:
            print("postgresql: skipped, the server does not answer.")
        else:
            name = f"bench_reminders_{uuid.uuid4().hex[:10]}"
            try:
                admin.execute(f'CREATE DATABASE "{name}"')
                results["postgresql"] = measure(database_url(options.admin_url, name), workdir,
                                                options.registrants)
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for database, figures in results.items():
        floor_s = figures["floor"][0]
        for label, (seconds, rows) in figures.items():
            ratio = ""
            if label == "week reminder due":
                ratio = f"   ours/floor time {seconds / floor_s:.1f}×"
            print(f"{database:<10} {label:<18} {seconds * 1000:9.1f} ms  {rows:>7,} rows{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
