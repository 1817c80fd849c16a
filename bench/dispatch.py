"""Dispatch throughput against plain smtplib, and the cost of an idle tick, in one run.

A local aiosmtpd sink runs in a process of its own (so it shares no GIL with the senders) and
counts what it gets by Message-ID. The baseline sends pre-built bytes of the same messages over
one smtplib connection to that sink. Then 1 and 4 dispatcher processes (SMTP_CONNECTIONS=4
each) send the same number of due confirmations with invites, on SQLite and on PostgreSQL (a
database made for the run and dropped after it), and a whole `flask dispatch` process, with
SMTP_CONNECTIONS=4 and =1, runs against a whole floor process. Last, with a million future
messages in PostgreSQL, the median time of a dispatch tick that finds nothing due, and the plan
of its claim statement (bench/support/idle_tick.py). Aims are printed beside the figures; a
missed aim is reported, never a failure.

    .venv/bin/python bench/dispatch.py [--messages 10000] [--mark-batch 1 10] [--only sqlite]
"""

import argparse
import multiprocessing
import os
import shutil
import smtplib
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.support import dispatch_process  # noqa: E402
from bench.support.databases import database_url, postgres_admin, quiet  # noqa: E402
from bench.support.idle_tick import idle_tick  # noqa: E402
from bench.support.sink import Sink  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "bench-secret-key-" + uuid.uuid4().hex
# The instant every run dispatches at: all messages are due, none expired.
NOW = datetime(2025, 6, 20, 9, 0, tzinfo=UTC)
EVENTS = 20
AIM_RATIO = 0.5
AIM_IDLE_MS = 5.0
# SMTP connections per dispatcher: the default, and one as before the pool.
POOL = 4


# -- databases and data ---------------------------------------------------------------------------


def settings_for(url, workdir, sink_port, mark_batch=1, connections=POOL):
    """The app's settings (environment strings) for one run against the sink."""
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET_KEY,
        "BASE_URL": "http://forum.example.org",
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink_port),
        "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
        "MAIL_FROM": "forum@example.org",
        "ORGANISER_EMAIL": "organisers@example.org",
        "SCHEDULER": "off",
        "RATELIMIT_ENABLED": "false",
        # Until app.py reads it from the environment, it reaches app.config as given here.
        "DISPATCH_MARK_BATCH": str(mark_batch),
        "SMTP_CONNECTIONS": str(connections),
    }


def prepare(url, workdir, sink_port, count):
    """Migrate a fresh database and queue `count` due confirmations with invites."""
    import flask_migrate
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.models import Message
    from registration import tokens
    from registration.models import Event, Registration

    app = create_app(settings_for(url, workdir, sink_port))
    with app.app_context():
        quiet(flask_migrate.upgrade)
        starts_at = NOW + timedelta(days=30)
        events = [
            {"slug": f"bench-{n}", "title": f"Benchmark session {n}", "kind": "webinar",
             "pillar": "exchange", "starts_at": starts_at + timedelta(days=n),
             "ends_at": starts_at + timedelta(days=n, hours=1), "timezone": "Europe/Berlin",
             "capacity": None, "language": "en", "join_url": f"https://meet.example.org/j/{n}",
             "description": "How cities fund climate action.", "status": "scheduled",
             "created_at": NOW, "updated_at": NOW}
            for n in range(EVENTS)
        ]
        event_ids = db.session.scalars(
            sa.insert(Event).returning(Event.id, sort_by_parameter_order=True), events
        ).all()
        ends_at = {event_id: e["ends_at"] for event_id, e in zip(event_ids, events, strict=True)}
        registrations = []
        for n in range(count):
            # A transient Registration only to carry the link's nonce and digest (tokens.py
            # picks the link's purpose by the holder's type).
            person = Registration()
            tokens.issue_token(person)
            registrations.append({
                "event_id": event_ids[n % EVENTS], "status": "confirmed",
                "name": f"Attendee {n}", "email": f"attendee{n}@example.org",
                "email_key": f"attendee{n}@example.org", "organisation": "City of Yokohama",
                "affiliation": "local_government", "country": "JP",
                "timezone": "Asia/Tokyo", "language": "ja" if n % 4 == 0 else "en",
                "registered_at": NOW, "confirmed_at": NOW, "consent_at": NOW,
                "consent_version": "2025-06", "token_nonce": person.token_nonce,
                "token_digest": person.token_digest, "ical_uid": f"{uuid.uuid4()}@forum-signup",
                "ical_sequence": 0,
            })
        registration_ids = db.session.scalars(
            sa.insert(Registration).returning(Registration.id, sort_by_parameter_order=True),
            registrations,
        ).all()
        db.session.execute(sa.insert(Message), [
            {"registration_id": registration_id, "event_id": r["event_id"],
             "kind": "confirmation", "status": "pending",
             "message_id": f"<{uuid.uuid4().hex}@example.org>", "recipient": r["email"],
             "ical_method": "REQUEST", "ical_sequence": 0, "created_at": NOW,
             "due_at": NOW - timedelta(minutes=1), "expires_at": ends_at[r["event_id"]]}
            for registration_id, r in zip(registration_ids, registrations, strict=True)
        ])
        db.session.commit()
        db.engine.dispose()


def reset(url, workdir, sink_port):
    """Every message pending and due again, as before the first run."""
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.models import Message

    app = create_app(settings_for(url, workdir, sink_port))
    with app.app_context():
        db.session.execute(sa.update(Message).values(
            status="pending", sent_at=None, attempts=0, last_attempt_at=None, last_reply=None,
            attempt_log=None, claim_token=None, lease_until=None,
            due_at=NOW - timedelta(minutes=1)))
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE messages")
        db.engine.dispose()


def statuses(url, workdir, sink_port):
    """How many messages are in each status."""
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.models import Message

    app = create_app(settings_for(url, workdir, sink_port))
    with app.app_context():
        counts = dict(db.session.execute(
            sa.select(Message.status, sa.func.count()).group_by(Message.status)).all())
        db.engine.dispose()
    return counts


def prebuilt(url, workdir, sink_port):
    """The wire bytes of every message, built once, for the baseline."""
    import sqlalchemy as sa
    from sqlalchemy.orm import joinedload

    from app import create_app
    from extensions import db
    from notifications.mail import build_message
    from notifications.models import Message

    app = create_app(settings_for(url, workdir, sink_port))
    with app.app_context():
        messages = db.session.scalars(
            sa.select(Message).options(joinedload(Message.registration),
                                       joinedload(Message.event)).order_by(Message.id)
        ).all()
        built = [build_message(m, app.config, NOW) for m in messages]
        db.engine.dispose()
    return built


# -- the runs -------------------------------------------------------------------------------------

def baseline(mails, port):
    """Plain smtplib over one connection: messages per second."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for mail in mails:
            connection.sendmail(mail.envelope_from, list(mail.recipients), mail.data)
    return len(mails) / (time.perf_counter() - started)


def _dispatcher_process(config, ready, go, results):
    from app import create_app
    from extensions import db
    from notifications.dispatcher import dispatch_due

    app = create_app(config)
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))  # connect before the clock starts
        db.session.commit()
        ready.release()
        go.wait()
        summary = dispatch_due(lambda: NOW)
        results.put((time.monotonic(), summary.sent, summary.failed + summary.skipped
                     + summary.retrying))
        db.session.remove()
        db.engine.dispose()


def run_dispatchers(context, config, workers):
    """Start `workers` dispatcher processes, let them go together; messages per second."""
    ready, go, results = context.Semaphore(0), context.Event(), context.Queue()
    processes = [context.Process(target=_dispatcher_process, args=(config, ready, go, results))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    started = time.monotonic()
    go.set()
    finished = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    sent = sum(sent for _, sent, _ in finished)
    not_sent = sum(other for _, _, other in finished)
    seconds = max(at for at, _, _ in finished) - started
    return sent / seconds, sent, not_sent


# -- the report -----------------------------------------------------------------------------------

def _aim(ok):
    return "ok" if ok else "MISSED"


def main(argv=None):
    """Run everything on SQLite and (if reachable) PostgreSQL; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000, help="due messages per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4],
                        help="dispatcher process counts to run")
    parser.add_argument("--mark-batch", type=int, nargs="+", default=[1, 20],
                        help="DISPATCH_MARK_BATCH values to run")
    parser.add_argument("--process-messages", type=int, default=3_000,
                        help="messages for the whole-process runs (flask dispatch, floor); 0 skips")
    parser.add_argument("--idle-rows", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL",
                                                              DEFAULT_ADMIN_URL))
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one database only")
    options = parser.parse_args(argv)

    context = multiprocessing.get_context("spawn")
    workdir = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    pg_name = f"bench_dispatch_{uuid.uuid4().hex[:10]}"
    admin = None
    sink = Sink(context).start()
    print(f"{options.messages} due confirmations with invites (text + HTML + calendar + .ics) "
          f"to an aiosmtpd sink in its own process; {os.cpu_count()} CPUs shared by senders, "
          "sink and database; DISPATCH_BATCH_SIZE=100.", flush=True)
    try:
        targets = []
        if options.only != "postgresql":
            targets.append(("sqlite", f"sqlite:///{workdir / 'bench.sqlite3'}"))
        if options.only != "sqlite":
            admin = postgres_admin(options.admin_url)
            if admin is not None:
                admin.execute(f'CREATE DATABASE "{pg_name}"')
                targets.append(("postgresql", database_url(options.admin_url, pg_name)))

        rows = []
        process_rows = []
        base_rate = None
        for database, url in targets:
            prepare(url, workdir, sink.port, options.messages)
            if base_rate is None:
                mails = prebuilt(url, workdir, sink.port)
                floor_mail = mails[1]  # an English confirmation with invite, built once
                sink.ask("reset")
                base_rate = baseline(mails, sink.port)
                counts = sink.ask("counts")
                assert len(counts) == len(mails) and set(counts.values()) == {1}
                print(f"baseline (smtplib, one connection, pre-built bytes): "
                      f"{base_rate:,.0f} messages/s", flush=True)
            for mark_batch in options.mark_batch:
                for workers in options.workers:
                    reset(url, workdir, sink.port)
                    sink.ask("reset")
                    config = settings_for(url, workdir, sink.port, mark_batch)
                    rate, sent, not_sent = run_dispatchers(context, config, workers)
                    counts = sink.ask("counts")
                    left = statuses(url, workdir, sink.port)
                    exact = (len(counts) == options.messages and set(counts.values()) == {1}
                             and left == {"sent": options.messages})
                    rows.append((database, mark_batch, workers, rate, exact))
                    print(f"  {database:<11} mark batch {mark_batch:>3}  {workers} worker(s): "
                          f"{rate:>7,.0f} messages/s  {rate / base_rate:>5.2f}× baseline  "
                          f"delivered {sum(counts.values())}, distinct {len(counts)}, "
                          f"statuses {left}", flush=True)
            if options.process_messages:
                # The whole `flask dispatch` process, start-up included, against a whole floor
                # process sending one of the same messages as many times; one after the other.
                count = min(options.process_messages, options.messages)
                floor_run = dispatch_process.floor(floor_mail, count, sink, workdir)
                ours = {}
                for connections in (POOL, 1):
                    reset(url, workdir, sink.port)
                    config = settings_for(url, workdir, sink.port, connections=connections)
                    dispatch_process.leave_due(config, count)
                    ours[connections] = dispatch_process.flask_dispatch(config, NOW, sink)
                process_rows.append((database, ours, floor_run))
                print(f"  {database:<11} whole flask dispatch: "
                      + ", ".join(f"{run.rate:,.0f} messages/s with SMTP_CONNECTIONS={n}"
                                  for n, run in ours.items())
                      + f"; floor process: {floor_run.rate:,.0f} messages/s", flush=True)

        print()
        print(f"{'database':<12}{'mark batch':>10}{'workers':>8}{'messages/s':>12}"
              f"{'× baseline':>12}  exactly once")
        for database, mark_batch, workers, rate, exact in rows:
            print(f"{database:<12}{mark_batch:>10}{workers:>8}{rate:>12,.0f}"
                  f"{rate / base_rate:>12.2f}  {'yes' if exact else 'NO'}")
        print(f"baseline: {base_rate:,.0f} messages/s (smtplib, one connection, same sink)")
        for database, mark_batch in dict.fromkeys((r[0], r[1]) for r in rows):
            by_workers = {r[2]: r[3] for r in rows if r[:2] == (database, mark_batch)}
            aims = []
            if 1 in by_workers:
                ratio = by_workers[1] / base_rate
                aims.append(f"1 worker ≥ {AIM_RATIO}× baseline {_aim(ratio >= AIM_RATIO)}")
            if 1 in by_workers and 4 in by_workers:
                aims.append(f"4 workers faster than 1 {_aim(by_workers[4] > by_workers[1])}")
            print(f"aims, {database}, mark batch {mark_batch}: {'; '.join(aims)}")
        if process_rows:
            dispatch_process.print_runs(process_rows, min(options.process_messages,
                                                          options.messages), AIM_RATIO)

        pg_url = next((url for database, url in targets if database == "postgresql"), None)
        if pg_url and options.idle_rows:
            print(f"\nidle tick on PostgreSQL: inserting {options.idle_rows:,} future messages …",
                  flush=True)
            total, plans, median_ms = idle_tick(settings_for(pg_url, workdir, sink.port), NOW,
                                                options.idle_rows, options.ticks)
            for name, plan in plans.items():
                print(f"EXPLAIN {name} ({total:,} rows in messages):")
                for line in plan:
                    print(f"    {line}")
                uses_index = any("ix_messages_due" in line for line in plan)
                print(f"  uses ix_messages_due: {'yes' if uses_index else 'NO'}")
            print(f"idle tick: median {median_ms:.2f} ms over {options.ticks} ticks  "
                  f"aim: < {AIM_IDLE_MS:g} ms {_aim(median_ms < AIM_IDLE_MS)}")
    finally:
        sink.stop()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("Aims are reported, never enforced: a missed aim does not fail the build.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
