"""The attendee export over HTTP against the database's own CSV export of the same rows, one run.

Each database (SQLite, and PostgreSQL when the local server answers) gets a fresh migrated
database of its own with --rows registrations spread over 50 events. Our app serves
GET /admin/attendees.csv from gunicorn with one gthread worker: a sync worker is killed after
--timeout (30 s) in the middle of a long stream, a gthread worker is not. The baseline is the
database's own CSV of the same query in the same run: PostgreSQL's COPY … TO STDOUT through
psycopg, SQLite's `sqlite3 -csv` (Python's csv module over a cursor if the CLI is missing).
Prints the time, the worker's peak memory growth (VmHWM after, less VmRSS before, read from
/proc, the peak reset with clear_refs) and the ratio, the aims beside them; a missed aim is
reported, never a failure.

    .venv/bin/python bench/export.py [--rows 100000] [--repeat 3] [--no-xlsx]
"""

import argparse
import contextlib
import csv
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
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
EVENTS = 50
AIM_RATIO = 5.0
AIM_GROWTH_MB = 50.0
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# The export's own query, in SQL: the same rows, columns and order as registration/export.py.
EXPORT_SQL = (
    "SELECT e.slug, e.title, e.starts_at, r.status, r.registered_at, r.name, r.email, "
    "r.organisation, r.affiliation, r.country, r.timezone, r.language, r.consent_at, "
    "r.cancelled_at FROM registrations r JOIN events e ON e.id = r.event_id "
    "ORDER BY e.starts_at, e.id, r.registered_at, r.id"
)
NAMES = ["Aiko Tanaka", "田中 愛子", "Zoë Müller", "=cmd|' /C calc'!A0", "Ben O'Connor",
         "José \"Pepe\" García", "Nguyễn Thị Minh", "-minus first", "Olu 🌍 Adeyemi"]




def _env(url, workdir):
    return {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "SCHEDULER": "off",
            "MAIL_BACKEND": "file", "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
            "RATELIMIT_ENABLED": "false", "PASSWORD_HASH_METHOD": "scrypt:1024:8:1"}


def prepare(url, workdir, rows):
    """Migrate a fresh database; add the events, `rows` registrations and one organiser."""
    import flask_migrate
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from organisers import auth
    from organisers.models import Organiser
    from registration.models import Event, Registration

    app = create_app(_env(url, workdir))
    with app.app_context():
        quiet(flask_migrate.upgrade)
        now = datetime.now(UTC).replace(microsecond=0)
        db.session.execute(sa.insert(Event), [
            {"slug": f"bench-session-{n:02}", "title": f"Bench session {n}: climate finance",
             "kind": "webinar", "starts_at": now + timedelta(days=n),
             "ends_at": now + timedelta(days=n, hours=1), "timezone": "Europe/Berlin",
             "language": "en", "description": "", "status": "scheduled", "created_at": now,
             "updated_at": now}
            for n in range(EVENTS)
        ])
        event_ids = db.session.scalars(sa.select(Event.id).order_by(Event.id)).all()
        db.session.add(Organiser(email=ORGANISER, created_at=now,
                                 password_hash=auth.hash_password(PASSWORD)))
        batch = []
        for n in range(rows):
            status = "cancelled" if n % 20 == 0 else "waitlisted" if n % 20 == 1 else "confirmed"
            registered_at = now - timedelta(seconds=rows - n)
            batch.append({
                "event_id": event_ids[n % EVENTS], "status": status,
                "name": f"{NAMES[n % len(NAMES)]} {n}", "email": f"person{n}@example.org",
                "email_key": f"person{n}@example.org",
                "organisation": "City of Yokohama 横浜市" if n % 2 else "Bonn, \"Klimaschutz\"",
                "affiliation": "local_government", "country": "JP", "timezone": "Asia/Tokyo",
                "language": "ja" if n % 3 else "en", "registered_at": registered_at,
                "confirmed_at": registered_at if status == "confirmed" else None,
                "cancelled_at": now if status == "cancelled" else None,
                "consent_at": registered_at, "consent_version": "2025-06",
                "token_nonce": f"n{n}", "token_digest": f"d{n}",
                "ical_uid": f"u{n}@forum-signup", "ical_sequence": 0,
            })
            if len(batch) == 10_000:
                db.session.execute(sa.insert(Registration), batch)
                batch = []
        if batch:
            db.session.execute(sa.insert(Registration), batch)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        db.engine.dispose()


# -- the database's own CSV ---------------------------------------------------------------------

def postgres_copy(url):
    """Seconds and bytes of COPY (the export's query) TO STDOUT WITH CSV through psycopg."""
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        size = 0
        with cursor.copy(f"COPY ({EXPORT_SQL}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            for data in copy:
                size += len(data)
        return time.perf_counter() - started, size


def sqlite_csv(path):
    """Seconds and bytes of the sqlite3 CLI's -csv mode (or Python's csv over a cursor)."""
    cli = shutil.which("sqlite3")
    started = time.perf_counter()
    if cli:
        output = subprocess.run([cli, "-csv", "-header", str(path), EXPORT_SQL + ";"],
                                check=True, capture_output=True).stdout
        return time.perf_counter() - started, len(output)
    buffer = io.StringIO()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        cursor = conn.execute(EXPORT_SQL)
        writer = csv.writer(buffer)
        writer.writerow(column[0] for column in cursor.description)
        writer.writerows(cursor)
    return time.perf_counter() - started, len(buffer.getvalue().encode())


def baseline_name(database):
    if database == "postgresql":
        return "COPY … TO STDOUT (psycopg)"
    return "sqlite3 -csv" if shutil.which("sqlite3") else "csv.writer over a sqlite3 cursor"


# -- our export over HTTP -----------------------------------------------------------------------

def _worker_pid(server):
    """The one gunicorn worker: the master's child."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids = children.read_text().split()
    if len(pids) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {pids}")
    return int(pids[0])


def _status_kb(pid, name):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/{pid}/status")


def _reset_peak(pid):
    """Make VmHWM start again from the current RSS (Linux ≥ 4.0); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _sign_in(session, base_url):
    page = session.get(base_url + "/admin/login", timeout=30).text
    token = CSRF_RE.search(page).group(1)
    response = session.post(base_url + "/admin/login", timeout=30, allow_redirects=False,
                            data={"email": ORGANISER, "password": PASSWORD,
                                  "csrf_token": token})
    if response.status_code != 303:
        raise RuntimeError(f"sign-in answered {response.status_code}")


def _download(session, url):
    """Seconds, bytes and CRLF count of one download, read as it streams."""
    started = time.perf_counter()
    size = lines = 0
    with session.get(url, stream=True, timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=256 * 1024):
            size += len(chunk)
            lines += chunk.count(b"\r\n")
    return time.perf_counter() - started, size, lines


@dataclass
class Run:
    """Figures of one database: ours (best of the repeats), the baseline's, memory."""

    database: str
    ours_s: list = field(default_factory=list)
    size: int = 0
    lines: int = 0
    growth_kb: int = 0
    peak_reset: bool = True
    baseline_s: list = field(default_factory=list)
    baseline_size: int = 0
    xlsx_s: float | None = None
    xlsx_size: int = 0
    xlsx_growth_kb: int = 0
    errors: list = field(default_factory=list)


def measure(database, url, workdir, options, baseline):
    """Serve the app, download the export --repeat times, then the baseline as many times."""
    run = Run(database)
    server = GunicornServer("app:create_app()", workers=1, worker_class="gthread",
                            extra_args=["--threads", "4", "--timeout", "30"],
                            log_path=workdir / f"gunicorn-{database}.log")
    server.start({**_env(url, workdir), "BASE_URL": server.url})
    try:
        session = requests.Session()
        _sign_in(session, server.url)
        pid = _worker_pid(server)
        # Warm the worker (imports, templates, the pool) on one small event's export.
        _download(session, server.url + "/admin/events/bench-session-00/attendees.csv")
        before = _status_kb(pid, "VmRSS")
        run.peak_reset = _reset_peak(pid)
        for _ in range(options.repeat):
            seconds, run.size, run.lines = _download(session, server.url + "/admin/attendees.csv")
            run.ours_s.append(seconds)
        run.growth_kb = _status_kb(pid, "VmHWM") - before
        if options.xlsx:
            before = _status_kb(pid, "VmRSS")
            _reset_peak(pid)
            run.xlsx_s, run.xlsx_size, _ = _download(session,
                                                     server.url + "/admin/attendees.xlsx")
            run.xlsx_growth_kb = _status_kb(pid, "VmHWM") - before
    finally:
        server.stop()
    log = server.log_text()
    for marker in ("Traceback", "WORKER TIMEOUT", "database is locked"):
        if marker in log:
            run.errors.append(f"server log: {marker} ×{log.count(marker)}")
    for _ in range(options.repeat):
        seconds, run.baseline_size = baseline()
        run.baseline_s.append(seconds)
    if run.lines != options.rows + 1:
        run.errors.append(f"the export had {run.lines} lines, not {options.rows + 1}")
    return run


# -- the report ---------------------------------------------------------------------------------

def _aim(ok):
    return "ok" if ok else "MISSED"


def print_report(runs, options):
    print()
    header = (f"{'database':<12}{'ours (HTTP)':>12}{'database CSV':>14}{'ratio':>8}"
              f"{'worker peak growth':>20}{'ours size':>11}{'db size':>10}")
    print(header)
    print("-" * len(header))
    for run in runs:
        ours, base = min(run.ours_s), min(run.baseline_s)
        ratio = ours / base
        growth_mb = run.growth_kb / 1024
        print(f"{run.database:<12}{ours:>10.2f} s{base:>12.2f} s{ratio:>7.1f}×"
              f"{growth_mb:>16.1f} MB{run.size / 1e6:>8.1f} MB{run.baseline_size / 1e6:>7.1f} MB"
              f"  aims: ratio ≤ {AIM_RATIO:g}× {_aim(ratio <= AIM_RATIO)}, "
              f"growth < {AIM_GROWTH_MB:g} MB {_aim(growth_mb < AIM_GROWTH_MB)}")
        print(f"{'':<12}ours per run: {', '.join(f'{s:.2f} s' for s in run.ours_s)}; "
              f"{baseline_name(run.database)}: {', '.join(f'{s:.2f} s' for s in run.baseline_s)}"
              f"; {(options.rows / ours):,.0f} rows/s over HTTP")
        if run.xlsx_s is not None:
            print(f"{'':<12}XLSX (no aim): {run.xlsx_s:.2f} s, {run.xlsx_size / 1e6:.1f} MB, "
                  f"worker peak growth {run.xlsx_growth_kb / 1024:.1f} MB, "
                  f"{run.xlsx_s / base:.1f}× the database's CSV")
        if not run.peak_reset:
            print(f"{'':<12}(clear_refs refused: growth is the worker's lifetime peak)")
        for error in run.errors:
            print(f"{'':<12}ERROR: {error}")
    print()
    print(f"ours: GET /admin/attendees.csv, every event, streamed (best of {options.repeat}); "
          "database CSV: the same query's rows exported by the database itself (best of "
          f"{options.repeat}); growth: the gunicorn worker's VmHWM after the downloads less "
          "its VmRSS before. A missed aim is reported, not a failure.")






def main(argv=None):
    """Run the benchmark on SQLite and (if reachable) PostgreSQL; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000, help="registrations to export")
    parser.add_argument("--repeat", type=int, default=3, help="downloads per database")
    parser.add_argument("--no-xlsx", dest="xlsx", action="store_false",
                        help="skip the (slower, unaimed) XLSX download")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL",
                                                              DEFAULT_ADMIN_URL),
                        help="PostgreSQL server to create the benchmark database on")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one database only")
    options = parser.parse_args(argv)

    print(f"Attendee export of {options.rows:,} registrations over {EVENTS} events, 14 columns; "
          "gunicorn --workers 1 --worker-class gthread --threads 4 (a sync worker would be "
          f"killed after --timeout during a long stream); {os.cpu_count()} CPUs shared by "
          "client, server and database.")
    workdir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    admin = None
    pg_name = f"bench_export_{uuid.uuid4().hex[:10]}"
    runs = []
    try:
        targets = []
        if options.only != "postgresql":
            path = workdir / "export.sqlite3"
            targets.append(("sqlite", f"sqlite:///{path}", lambda path=path: sqlite_csv(path)))
        if options.only != "sqlite":
            admin = postgres_admin(options.admin_url)
            if admin is not None:
                admin.execute(f'CREATE DATABASE "{pg_name}"')
                pg_url = database_url(options.admin_url, pg_name)
                targets.append(("postgresql", pg_url, lambda url=pg_url: postgres_copy(url)))
        for database, url, baseline in targets:
            print(f"{database}: inserting {options.rows:,} registrations …", flush=True)
            started = time.perf_counter()
            prepare(url, workdir, options.rows)
            print(f"{database}: inserted in {time.perf_counter() - started:.1f} s; "
                  "exporting …", flush=True)
            runs.append(measure(database, url, workdir, options, baseline))
    finally:
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print_report(runs, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
