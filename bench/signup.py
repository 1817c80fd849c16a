"""Sign-ups per second and latency over real HTTP, ours against a Flask floor and a bare WSGI
baseline in one run.

Each database (SQLite, and PostgreSQL when the local server answers) gets a fresh migrated
database, our app, the Flask floor (bench/baseline/flask_floor.py: Flask's session cookie, one
INSERT into a table of its own in our database) and the bare WSGI baseline
(bench/baseline/signup_app.py) under the same gunicorn settings, and the same load: concurrent
browsers that GET the form and POST it with their cookie and CSRF token, each with a new address.
Ours runs twice: the session's own form, then the form for several sessions with 5 per sign-up
(GET /signup?event=…, POST /signup). Prints a table with the aims beside the figures; a missed
aim is reported, never a failure. Then, per database, where the time goes, measured in-process
(bench/support/signup_costs.py): the GET and its template with the rendered-once fragments and
without them, the POST, WTForms and email-validator.

    .venv/bin/python bench/signup.py [--duration 10] [--clients 50] [--workers 4] [--costs-only]
"""

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BASELINE_DIR = ROOT / "bench" / "baseline"
sys.path[:0] = [str(ROOT), str(BASELINE_DIR)]
import flask_floor  # noqa: E402
import signup_app as baseline  # noqa: E402

from bench.support.databases import database_url, postgres_admin, quiet  # noqa: E402
from bench.support.signup_costs import measure, print_costs  # noqa: E402
from bench.support.signup_report import (  # noqa: E402
    BASELINE,
    FLOOR,
    SEVERAL,
    SINGLE,
    print_report,
)
from tests.servers import GunicornServer  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SLUG = "bench-open-session"
SEVERAL_SLUGS = tuple(f"bench-session-{n}" for n in range(1, 6))
# What a browser loads, where it sends the form, and the sessions it names in the form.
SINGLE_TARGET = (f"/events/{SLUG}", f"/events/{SLUG}/register", ())
SEVERAL_TARGET = ("/signup?" + urlencode([("event", slug) for slug in SEVERAL_SLUGS]), "/signup",
                  SEVERAL_SLUGS)
SECRET_KEY = "bench-secret-key-" + uuid.uuid4().hex
CSRF_RE = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
TAG_RE = re.compile(r"<[^>]*>")
HTTP_TIMEOUT = 60


# -- the load: browsers in threads, spread over processes so the client isn't GIL-bound -------

@dataclass
class Sample:
    """One browser's GET + POST: when it started and ended (epoch s), its timings, any error."""

    started_at: float
    ended_at: float
    get_s: float
    post_s: float
    error: str = ""


def _request(port, method, path, cookies, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        headers = {"Accept": "text/html", "User-Agent": "forum-signup-bench"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://127.0.0.1:{port}"
            headers["Referer"] = f"http://127.0.0.1:{port}{path.rsplit('/', 1)[0]}"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or ():
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, content
    finally:
        connection.close()


def _browse(port, target, tag, measure_until, samples):
    """Sign up new people one after another until measure_until, as a browser would."""
    form_path, post_path, events = target
    n = 0
    while (started_at := time.time()) < measure_until:
        n += 1
        cookies = {}
        error, get_s, post_s = "", 0.0, 0.0
        t0 = time.perf_counter()
        try:
            status, page = _request(port, "GET", form_path, cookies)
            get_s = time.perf_counter() - t0
            token = CSRF_RE.search(page)
            if status != 200 or token is None:
                error = f"GET {status}" + ("" if token else ", no csrf_token")
            else:
                form = {
                    "csrf_token": token.group(1).decode(), "name": f"Bench Person {tag}-{n}",
                    "email": f"bench-{tag}-{n}@example.org", "organisation": "City of Bench",
                    "affiliation": "local_government", "country": "JP",
                    "timezone": "Asia/Tokyo", "language": "en", "consent": "y", "website": "",
                }
                t1 = time.perf_counter()
                status, body = _request(port, "POST", post_path, cookies,
                                        urlencode([*form.items(),
                                                   *(("event", slug) for slug in events)]))
                post_s = time.perf_counter() - t1
                if status != 303:
                    text = " ".join(TAG_RE.sub(" ", body.decode(errors="replace")).split())
                    error = f"POST {status}: {text[:100]}"
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"[:100]
        samples.append(Sample(started_at, time.time(), get_s, post_s, error))


def _client_process(args):
    """Run `threads` browsers in this process; return their samples (warm-up included) and the
    CPU seconds the process used, to show whether the client was a bottleneck."""
    port, target, process_index, threads, measure_until = args
    samples = []  # list.append is atomic under the GIL
    workers = [
        threading.Thread(target=_browse,
                         args=(port, target, f"{process_index}-{i}", measure_until, samples))
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return samples, time.process_time()


def _group_cpu_seconds(pgid):
    """CPU time (user + system) used so far by every live process in a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        # After the command: state ppid pgrp ... utime (12th) stime (13th).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# -- one run: a server, a warm-up, a measured window --------------------------------------------

@dataclass
class Result:
    """The figures of one run."""

    database: str
    app: str
    duration: float
    signups: int = 0
    errors: Counter = field(default_factory=Counter)
    post_ms: list = field(default_factory=list)
    pair_ms: list = field(default_factory=list)
    cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    attempts: int = 0
    stored: int = 0
    acknowledged: int = 0
    sessions: int = 1  # registrations each sign-up stores

    @property
    def rate(self):
        return self.signups / self.duration

    @property
    def error_count(self):
        return sum(self.errors.values())


def run(database, app, app_spec, env, options, workdir, count_stored, pythonpath=None,
        target=SINGLE_TARGET):
    """Serve app_spec under gunicorn, drive the load through it, return what was measured."""
    extra = ["--pythonpath", str(pythonpath)] if pythonpath else []
    server = GunicornServer(app_spec, workers=options.workers, extra_args=extra,
                            log_path=workdir / f"gunicorn-{database}-{app.replace(' ×', '-x')}.log")
    stored_before = count_stored()
    server.start({**env, "BASE_URL": server.url})
    result = Result(database, app, options.duration, sessions=len(target[2]) or 1)
    try:
        processes = min(options.processes, options.clients)
        per_process = [options.clients // processes + (i < options.clients % processes)
                       for i in range(processes)]
        warmup_until = time.time() + options.warmup
        measure_until = warmup_until + options.duration
        jobs = [(server.port, target, i, n, measure_until)
                for i, n in enumerate(per_process)]
        context = multiprocessing.get_context("fork")
        with context.Pool(processes) as pool:
            pending = pool.map_async(_client_process, jobs)
            time.sleep(max(0.0, warmup_until - time.time()))
            cpu_start = _group_cpu_seconds(server.process.pid)
            time.sleep(max(0.0, measure_until - time.time()))
            cpu_end = _group_cpu_seconds(server.process.pid)
            batches = pending.get()
    finally:
        server.stop()
    samples = [sample for batch, _ in batches for sample in batch]
    result.client_cpu_s = sum(cpu for _, cpu in batches)
    result.attempts = len(samples)
    log = server.log_text()
    # What completed inside the window is measured; errors count until the very end.
    for sample in samples:
        if not sample.error:
            result.acknowledged += 1
        if sample.ended_at < warmup_until:
            continue
        if sample.error:
            result.errors[sample.error] += 1
        elif sample.ended_at < measure_until:
            result.signups += 1
            result.post_ms.append(sample.post_s * 1000)
            result.pair_ms.append((sample.get_s + sample.post_s) * 1000)
    for marker in ("Traceback", "database is locked", "WORKER TIMEOUT"):
        if marker in log:
            result.errors[f"server log: {marker} ×{log.count(marker)}"] += 1
    if "Traceback" in log:
        # The last line of the first traceback names the exception: enough to start from.
        first = log[log.index("Traceback"):].splitlines()
        ending = next((line for line in first[1:] if line and not line[0].isspace()), "")
        result.errors[f"server log, first exception: {ending[:200]}"] += 1
    result.cpu_s = cpu_end - cpu_start
    # Every sign-up answered with a 303 must be stored, or the figures mean nothing.
    result.stored = count_stored() - stored_before
    return result


# -- databases -----------------------------------------------------------------------------------


def _prepare_our_database(url, workdir):
    """Migrate a fresh database and add the sessions, without a seat limit: one for the
    single form, five for the form for several."""
    import flask_migrate
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from registration.models import Event, Registration

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "SCHEDULER": "off",
                      "MAIL_OUTBOX_DIR": str(workdir / "outbox")})
    with app.app_context():
        quiet(flask_migrate.upgrade)
        now = datetime.now(UTC)
        db.session.add_all(Event(
            slug=slug, title=f"Benchmark session {n}", kind="webinar", pillar="exchange",
            starts_at=now + timedelta(days=30 + n), ends_at=now + timedelta(days=30 + n, hours=1),
            timezone="Europe/Berlin", capacity=None, language="en",
            join_url="https://meet.example.org/j/bench", description="Load test.",
            status="scheduled", created_at=now, updated_at=now,
        ) for n, slug in enumerate((SLUG, *SEVERAL_SLUGS)))
        db.session.commit()
        db.engine.dispose()

    def count_stored():
        engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        try:
            with engine.connect() as connection:
                return connection.scalar(sa.select(sa.func.count(Registration.id)))
        finally:
            engine.dispose()

    return count_stored


def main(argv=None):
    """Run the benchmark on SQLite and (if reachable) PostgreSQL; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--clients", type=int, default=50, help="concurrent browsers")
    parser.add_argument("--processes", type=int, default=5, help="client processes")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL",
                                                              DEFAULT_ADMIN_URL),
                        help="PostgreSQL server to create the benchmark database on")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one database only")
    parser.add_argument("--costs-only", action="store_true",
                        help="only the in-process costs, no HTTP runs")
    options = parser.parse_args(argv)

    print(f"{options.clients} concurrent browsers ({options.processes} client processes), "
          f"each GET form + POST with cookie and CSRF token, a new address per sign-up; "
          f"gunicorn --workers {options.workers} (sync); {options.warmup:g} s warm-up, "
          f"{options.duration:g} s measured per run; {os.cpu_count()} CPUs shared by client, "
          "server and database.")
    print("Rate limiting is off (RATELIMIT_ENABLED=false): all the load comes from one IP.")

    workdir = Path(tempfile.mkdtemp(prefix="bench-signup-"))
    results = []
    costs = []
    admin = None
    pg_name = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        targets = []
        if options.only != "postgresql":
            targets.append(("sqlite", f"sqlite:///{workdir / 'ours.sqlite3'}",
                            f"sqlite:///{workdir / 'baseline.sqlite3'}"))
        if options.only != "sqlite":
            admin = postgres_admin(options.admin_url)
            if admin is not None:
                admin.execute(f'CREATE DATABASE "{pg_name}"')
                pg_url = database_url(options.admin_url, pg_name)
                targets.append(("postgresql", pg_url, pg_url))
        for database, our_url, baseline_url in targets:
            count_ours = _prepare_our_database(our_url, workdir)
            baseline.create_schema(baseline_url)
            flask_floor.create_schema(our_url)
            env = {"SECRET_KEY": SECRET_KEY, "SCHEDULER": "off", "RATELIMIT_ENABLED": "false",
                   "MAIL_BACKEND": "file", "MAIL_OUTBOX_DIR": str(workdir / "outbox")}
            if options.costs_only:
                costs.append((database, _costs(env, our_url)))
                continue
            print(f"running {database}: baseline …", flush=True)
            results.append(run(database, BASELINE, "signup_app:create_app()",
                               {**env, "DATABASE_URL": baseline_url}, options, workdir,
                               lambda url=baseline_url: baseline.count_signups(url),
                               pythonpath=BASELINE_DIR))
            print(f"running {database}: Flask floor …", flush=True)
            results.append(run(database, FLOOR, "flask_floor:create_app()",
                               {**env, "DATABASE_URL": our_url}, options, workdir,
                               lambda url=our_url: flask_floor.count_signups(url),
                               pythonpath=BASELINE_DIR))
            print(f"running {database}: ours …", flush=True)
            results.append(run(database, SINGLE, "app:create_app()",
                               {**env, "DATABASE_URL": our_url}, options, workdir, count_ours))
            print(f"running {database}: ours, 5 sessions per sign-up …", flush=True)
            results.append(run(database, SEVERAL, "app:create_app()",
                               {**env, "DATABASE_URL": our_url}, options, workdir, count_ours,
                               target=SEVERAL_TARGET))
            costs.append((database, _costs(env, our_url)))
    finally:
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if results:
        print_report(results)
    print()
    for database, rows in costs:
        print_costs(database, rows)
    return 0


def _costs(env, url):
    """The in-process costs on this database (after the HTTP runs: its sign-ups add rows)."""
    print("measuring in-process costs …", flush=True)
    return quiet(measure, {**env, "DATABASE_URL": url, "BASE_URL": "http://127.0.0.1"},
                 SLUG, SEVERAL_SLUGS)


if __name__ == "__main__":
    sys.exit(main())
