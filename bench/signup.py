"""Sign-ups per second and latency over real HTTP, ours against a bare WSGI baseline in one run.

Each database (SQLite, and PostgreSQL when the local server answers) gets a fresh migrated
database, our app and the baseline (bench/baseline/signup_app.py) under the same gunicorn
settings, and the same load: concurrent browsers that GET the form and POST it with their cookie
and CSRF token, each with a new address. Prints a table with the aims beside the figures; a missed
aim is reported, never a failure.

    .venv/bin/python bench/signup.py [--duration 10] [--clients 50] [--workers 4]
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
import signup_app as baseline  # noqa: E402

from bench.support.databases import database_url, postgres_admin, quiet  # noqa: E402
from tests.servers import GunicornServer  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SLUG = "bench-open-session"
SECRET_KEY = "bench-secret-key-" + uuid.uuid4().hex
CSRF_RE = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
TAG_RE = re.compile(r"<[^>]*>")
AIM_RATIO = 0.5
AIM_P99_MS = 150.0
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


def _browse(port, slug, tag, measure_until, samples):
    """Sign up new people one after another until measure_until, as a browser would."""
    n = 0
    while (started_at := time.time()) < measure_until:
        n += 1
        cookies = {}
        error, get_s, post_s = "", 0.0, 0.0
        t0 = time.perf_counter()
        try:
            status, page = _request(port, "GET", f"/events/{slug}", cookies)
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
                status, body = _request(port, "POST", f"/events/{slug}/register", cookies,
                                        urlencode(form))
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
    port, slug, process_index, threads, measure_until = args
    samples = []  # list.append is atomic under the GIL
    workers = [
        threading.Thread(target=_browse,
                         args=(port, slug, f"{process_index}-{i}", measure_until, samples))
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

    @property
    def rate(self):
        return self.signups / self.duration

    @property
    def error_count(self):
        return sum(self.errors.values())


def percentile(values, fraction):
    """The value below which `fraction` of the values lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def run(database, app, app_spec, env, options, workdir, count_stored, pythonpath=None):
    """Serve app_spec under gunicorn, drive the load through it, return what was measured."""
    extra = ["--pythonpath", str(pythonpath)] if pythonpath else []
    server = GunicornServer(app_spec, workers=options.workers, extra_args=extra,
                            log_path=workdir / f"gunicorn-{database}-{app}.log")
    stored_before = count_stored()
    server.start({**env, "BASE_URL": server.url})
    result = Result(database, app, options.duration)
    try:
        processes = min(options.processes, options.clients)
        per_process = [options.clients // processes + (i < options.clients % processes)
                       for i in range(processes)]
        warmup_until = time.time() + options.warmup
        measure_until = warmup_until + options.duration
        jobs = [(server.port, SLUG, i, n, measure_until)
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
    """Migrate a fresh database and add one session without a seat limit."""
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
        db.session.add(Event(
            slug=SLUG, title="Benchmark session", kind="webinar", pillar="exchange",
            starts_at=now + timedelta(days=30), ends_at=now + timedelta(days=30, hours=1),
            timezone="Europe/Berlin", capacity=None, language="en",
            join_url="https://meet.example.org/j/bench", description="Load test.",
            status="scheduled", created_at=now, updated_at=now,
        ))
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






# -- the report ----------------------------------------------------------------------------------

def _aim(ok):
    return "ok" if ok else "MISSED"


def _per_signup_ms(seconds, count):
    return seconds * 1000 / count if count else float("nan")


def print_report(results):
    """The table: one line per run, the ratio under each database, aims beside the figures."""
    header = (f"{'database':<11}{'app':<10}{'sign-ups/s':>10}{'POST p50':>10}{'POST p99':>10}"
              f"{'pair p50':>10}{'pair p99':>10}{'errors':>7}{'CPU ms/sign-up':>16}")
    print()
    print(header)
    print(f"{'(pair = GET form + POST; CPU: server = gunicorn processes, client = load)':<78}"
          f"{'server':>8}{'client':>8}")
    print("-" * len(header))
    for database in dict.fromkeys(r.database for r in results):
        runs = {r.app: r for r in results if r.database == database}
        for result in runs.values():
            p99 = percentile(result.post_ms, 0.99)
            aims = ""
            if result.app == "ours":
                aims = (f"  aims: POST p99 < {AIM_P99_MS:g} ms {_aim(p99 < AIM_P99_MS)}, "
                        f"zero errors {_aim(result.error_count == 0)}")
            print(f"{database:<11}{result.app:<10}{result.rate:>10.1f}"
                  f"{percentile(result.post_ms, 0.5):>8.1f}ms{p99:>8.1f}ms"
                  f"{percentile(result.pair_ms, 0.5):>8.1f}ms"
                  f"{percentile(result.pair_ms, 0.99):>8.1f}ms{result.error_count:>7}"
                  f"{_per_signup_ms(result.cpu_s, result.signups):>8.2f}"
                  f"{_per_signup_ms(result.client_cpu_s, result.attempts):>8.2f}{aims}")
        if {"ours", "baseline"} <= runs.keys() and runs["baseline"].rate:
            ours, base = runs["ours"], runs["baseline"]
            ratio = ours.rate / base.rate
            cpu_ratio = (_per_signup_ms(base.cpu_s, base.signups)
                         / _per_signup_ms(ours.cpu_s, ours.signups))
            print(f"{database:<11}{'ours/base':<10}{ratio:>10.2f}"
                  f"{'':>47}{cpu_ratio:>8.2f}{'':>8}"
                  f"  aim: ratio ≥ {AIM_RATIO} {_aim(ratio >= AIM_RATIO)}")
        print()
    for result in results:
        for error, count in result.errors.most_common(5):
            print(f"  {result.database}/{result.app} error ×{count}: {error}")
        if result.stored != result.acknowledged:
            print(f"  {result.database}/{result.app}: {result.acknowledged} sign-ups answered "
                  f"303 but {result.stored} stored")
    print("ours/base: ours ÷ baseline sign-ups/s; under CPU, baseline ÷ ours CPU per sign-up.")
    print(f"Aims for ours: sign-ups/s ≥ {AIM_RATIO} × baseline, POST p99 < {AIM_P99_MS:g} ms, "
          "zero errors; a missed aim is reported, not a failure.")


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
    options = parser.parse_args(argv)

    print(f"{options.clients} concurrent browsers ({options.processes} client processes), "
          f"each GET form + POST with cookie and CSRF token, a new address per sign-up; "
          f"gunicorn --workers {options.workers} (sync); {options.warmup:g} s warm-up, "
          f"{options.duration:g} s measured per run; {os.cpu_count()} CPUs shared by client, "
          "server and database.")
    print("Rate limiting is off (RATELIMIT_ENABLED=false): all the load comes from one IP.")

    workdir = Path(tempfile.mkdtemp(prefix="bench-signup-"))
    results = []
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
            env = {"SECRET_KEY": SECRET_KEY, "SCHEDULER": "off", "RATELIMIT_ENABLED": "false",
                   "MAIL_BACKEND": "file", "MAIL_OUTBOX_DIR": str(workdir / "outbox")}
            print(f"running {database}: baseline …", flush=True)
            results.append(run(database, "baseline", "signup_app:create_app()",
                               {**env, "DATABASE_URL": baseline_url}, options, workdir,
                               lambda url=baseline_url: baseline.count_signups(url),
                               pythonpath=BASELINE_DIR))
            print(f"running {database}: ours …", flush=True)
            results.append(run(database, "ours", "app:create_app()",
                               {**env, "DATABASE_URL": our_url}, options, workdir, count_ours))
    finally:
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
