"""Dispatchers as real processes against one database and a real SMTP server: killed mid-send,
several at once, and `flask worker` from start to SIGTERM."""

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from extensions import db
from notifications import planner, worker
from notifications.dispatcher import dispatch
from notifications.models import Message
from registration import tokens
from registration.models import Registration
from settings import SETTING_NAMES
from tests.conftest import (
    NOW,
    base_config,
    database_time,
    end_leases,
    make_event,
    make_registration,
)
from tests.smtp_servers import SMTPServer

ROOT = Path(__file__).resolve().parent.parent
# Generous: a loaded CI machine starts a Flask process in seconds, not milliseconds.
DEADLINE_SECONDS = 60


def wait_for(happened: bool, what: str) -> None:
    """Fail saying what never happened (the waits themselves block on events, not on time)."""
    if not happened:
        pytest.fail(f"gave up after {DEADLINE_SECONDS:g} s waiting for {what}")


class FlaskProcess:
    """`flask <args>` in a process of its own; its stdout kept in a file, its stderr read line
    by line as it comes, so a test can wait for a line instead of polling."""

    def __init__(self, args, env, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path = folder / "stdout"
        with open(self.stdout_path, "wb") as stdout:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
            )
        self._lines = []
        self._ended = False
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            with self._new_line:
                self._lines.append(line.decode(errors="replace"))
                self._new_line.notify_all()
        with self._new_line:
            self._ended = True  # no more output: a waiter stops waiting
            self._new_line.notify_all()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        with self._new_line:
            return "".join(self._lines)

    def wrote(self, text: str, timeout: float = DEADLINE_SECONDS) -> bool:
        """Block until the process has written text to stderr (False if it never does)."""
        with self._new_line:
            self._new_line.wait_for(
                lambda: self._ended or text in "".join(self._lines), timeout)
            return text in "".join(self._lines)

    def wait(self, timeout: float = DEADLINE_SECONDS) -> int:
        """The exit code; fails the test (with the process's stderr) if it doesn't exit."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"flask process still running after {timeout:g} s:\n{self.stderr()}")
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        """SIGKILL, if still running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(DEADLINE_SECONDS)


@pytest.fixture
def processes():
    """Start flask processes with start(args, env, folder); whatever is left is killed after."""
    started = []

    def start(args, env, folder):
        started.append(FlaskProcess(args, env, folder))
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def server(app):
    """A real SMTP server; the in-test app sends through it too."""
    with SMTPServer() as server:
        app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=server.port,
                          SMTP_TIMEOUT_SECONDS=10)
        yield server


@pytest.fixture
def env(database_url, tmp_path, server):
    """The environment of a flask process on the test's database and SMTP server."""
    settings = {name: str(value) for name, value in base_config(database_url, tmp_path).items()
                if name in SETTING_NAMES}
    settings.update(FLASK_APP="app", MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1",
                    SMTP_PORT=str(server.port), SMTP_TIMEOUT_SECONDS="10")
    return {**os.environ, **settings}


def queue_confirmation(event, email, due_at=NOW) -> Message:
    """A confirmation with invite for a new registration, due at due_at (not committed)."""
    message = planner.queue_signup(make_registration(event, email=email), NOW)
    message.due_at = due_at
    return message


def queue_confirmations(event, count: int) -> list[Message]:
    """Many confirmations with invites, due at NOW (not committed)."""
    messages = []
    for n in range(count):
        registration = Registration(
            event=event, status="confirmed", name=f"Attendee {n}",
            email=f"attendee{n}@example.org", email_key=f"attendee{n}@example.org",
            organisation="City of Yokohama", affiliation="local_government", country="JP",
            timezone="Asia/Tokyo", language="ja" if n % 3 == 0 else "en", registered_at=NOW,
            confirmed_at=NOW, consent_at=NOW, consent_version="2025-06",
            ical_uid=f"{uuid.uuid4()}@forum-signup", ical_sequence=0,
        )
        tokens.issue_token(registration)
        db.session.add(registration)
        messages.append(planner.queue_signup(registration, NOW))
    return messages


def commit(*messages) -> list[tuple[int, str]]:
    """Commit; each message's id and Message-ID as plain values.

    On SQLite every transaction outside a request holds the write lock (BEGIN IMMEDIATE), and
    touching a row after a commit opens one: the test would lock out the processes it watches.
    """
    db.session.flush()
    keys = [(message.id, message.message_id) for message in messages]
    db.session.commit()
    return keys


def read(message_id: int):
    """The message's columns as plain values, the read transaction ended at once (see above)."""
    values = db.session.execute(
        sa.select(Message.__table__).where(Message.id == message_id)).one()
    db.session.commit()
    return values


# --- Crashes -----------------------------------------------------------------------------------


def test_a_dispatcher_killed_between_claim_and_send_is_replaced_after_its_lease_and_the_message_goes_once(  # noqa: E501
    app, server, env, processes, tmp_path
):
    [(message_id, message_key)] = commit(queue_confirmation(make_event(), "a@example.org"))
    stall = server.handler.stall_at_mail()
    doomed = processes(["dispatch", "--now", "2025-06-20T09:00:00Z"], env, tmp_path / "doomed")
    wait_for(stall.reached.wait(DEADLINE_SECONDS), "the dispatcher to start talking to the server")

    lease = timedelta(seconds=app.config["CLAIM_LEASE_SECONDS"])
    claimed = read(message_id)
    assert claimed.claim_token is not None and claimed.lease_until > database_time()
    assert claimed.lease_until <= database_time() + lease
    doomed.kill()  # SIGKILL: no handler, no clean-up, the claim stays
    assert doomed.process.returncode == -signal.SIGKILL
    stall.release()

    assert dispatch(NOW + lease).claimed == 0  # still leased, whatever `now` says
    assert server.handler.delivered == []
    end_leases()
    assert dispatch(NOW).sent == 1
    assert server.handler.message_ids() == {message_key: 1}
    sent = read(message_id)
    assert (sent.status, sent.attempts, sent.claim_token) == ("sent", 1, None)


# --- Several dispatchers -----------------------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 4])
def test_four_dispatcher_processes_send_a_thousand_messages_each_exactly_once(
    app, server, env, processes, tmp_path, connections
):
    expected = {key for _, key in commit(*queue_confirmations(make_event(), 1000))}
    # Hold every dispatcher at its first MAIL FROM until all four have claimed a batch and
    # opened all their connections, so they really do run side by side however long each
    # takes to start.
    stall = server.handler.stall_at_mail()
    settings = {**env, "DISPATCH_BATCH_SIZE": "25", "SMTP_CONNECTIONS": str(connections)}
    dispatchers = [
        processes(["dispatch", "--now", NOW.isoformat()], settings, tmp_path / f"dispatcher{n}")
        for n in range(4)
    ]
    wait_for(server.handler.wait_until(lambda: len(server.handler.sessions) == 4 * connections,
                                       DEADLINE_SECONDS), "four dispatchers to start sending")
    stall.release()
    assert [d.wait(timeout=180) for d in dispatchers] == [0, 0, 0, 0], dispatchers[0].stderr()

    sent_by_each = [int(re.match(r"dispatch: (\d+) sent", d.stdout()).group(1))
                    for d in dispatchers]
    assert sum(sent_by_each) == 1000 and all(sent_by_each), sent_by_each
    delivered = server.handler.message_ids()
    assert set(delivered) == expected
    assert set(delivered.values()) == {1}
    left = db.session.execute(
        sa.select(Message.status, Message.claim_token, sa.func.count())
        .group_by(Message.status, Message.claim_token)
    ).all()
    assert left == [("sent", None, 1000)]


# --- flask worker ------------------------------------------------------------------------------


def test_flask_worker_sends_due_mail_and_on_sigterm_finishes_the_message_in_flight_and_gives_back_the_rest(  # noqa: E501
    app, server, env, processes, tmp_path
):
    # The worker follows the real clock, so this test's times are real ones.
    now = datetime.now(UTC)
    event = make_event(starts_at=now + timedelta(days=30))
    [(_, first)] = commit(queue_confirmation(event, "first@example.org",
                                             due_at=now - timedelta(minutes=1)))
    worker = processes(["worker"], {**env, "DISPATCH_INTERVAL_SECONDS": "1"}, tmp_path / "w")
    wait_for(server.handler.wait_until(lambda: first in server.handler.message_ids(),
                                       DEADLINE_SECONDS), "the worker to send the first message")

    stall = server.handler.stall_at_mail()
    (in_flight, in_flight_key), (waiting, _) = commit(
        queue_confirmation(event, "second@example.org", due_at=now - timedelta(seconds=2)),
        queue_confirmation(event, "third@example.org", due_at=now - timedelta(seconds=1)),
    )
    wait_for(stall.reached.wait(DEADLINE_SECONDS), "the worker to start sending the second message")
    assert read(waiting).claim_token == read(in_flight).claim_token is not None

    worker.process.send_signal(signal.SIGTERM)
    wait_for(worker.wrote("SIGTERM received"), "the worker to take the signal")
    stall.release()
    assert worker.wait() == 0, worker.stderr()

    log = worker.stderr()
    assert re.search(r"worker \d+ started: dispatch every 1s, .* database (sqlite|postgresql)",
                     log)
    assert re.search(r"worker \d+ stopped", log)
    assert "Traceback" not in log
    assert read(in_flight).status == "sent"
    given_back = read(waiting)
    assert (given_back.status, given_back.claim_token, given_back.lease_until,
            given_back.attempts) == ("pending", None, None, 0)
    assert server.handler.message_ids() == {first: 1, in_flight_key: 1}


def test_flask_worker_stops_on_ctrl_c_when_idle(server, env, processes, tmp_path):
    worker = processes(["worker"], env, tmp_path / "w")
    wait_for(worker.wrote("started"), "the worker to start")
    worker.process.send_signal(signal.SIGINT)
    assert worker.wait() == 0, worker.stderr()
    assert "SIGINT received" in worker.stderr() and "stopped" in worker.stderr()


def test_flask_worker_once_skips_expired_mail_and_sends_what_is_due(app, server, runner):
    event = make_event()
    expired = queue_confirmation(event, "expired@example.org")
    expired.expires_at = NOW + timedelta(minutes=1)
    (due, _), (expired, _) = commit(queue_confirmation(event, "due@example.org"), expired)
    result = runner.invoke(args=["worker", "--once", "--now", "2025-06-20T09:05:00Z"])
    assert result.exit_code == 0, result.output
    assert "dispatch: 1 sent, 0 failed, 0 skipped, 0 retrying" in result.output
    assert read(due).status == "sent"
    assert (read(expired).status, read(expired).skip_reason) == ("skipped", "expired")


def test_flask_worker_refuses_now_without_once_in_one_line(app, runner):
    result = runner.invoke(args=["worker", "--now", "2025-06-20T09:05:00Z"])
    assert result.exit_code == 2
    assert result.output == "Error: --now only goes with --once; a running worker follows " \
                            "the clock\n"


# --- Scheduled jobs: a database that is down, a dispatch that runs long ------------------------

def scheduled_jobs(app):
    """The worker's jobs as its scheduler runs them (added to a scheduler never started)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=UTC)
    worker.add_jobs(scheduler, app, run_at_start=True)
    return {job.id: job for job in scheduler.get_jobs()}


def run_job(job, **kwargs):
    return job.func(*job.args, **kwargs)


def test_housekeeping_that_failed_at_start_is_retried_within_the_hour_with_one_line(
    app_with, caplog
):
    from tests.smtp_servers import free_port

    # The worker started while the database was down (a port where nothing listens).
    with app_with(DATABASE_URL=f"postgresql://forum@127.0.0.1:{free_port()}/forum") as down:
        housekeeping = scheduled_jobs(down)["housekeeping"]
        assert housekeeping.trigger.interval <= timedelta(hours=1)
        with caplog.at_level(logging.INFO):
            assert run_job(housekeeping, clock=lambda: NOW) is None
    failures = [r for r in caplog.records if "housekeeping failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is None  # one line, no traceback
    assert "database is unavailable" in failures[0].getMessage()

    # The database is back: the next tick, minutes later, does the work; later ticks that day
    # leave it alone, and the next day it runs again.
    with app_with() as up:
        closed = queue_confirmation(make_event(), "closed@example.org")
        closed.expires_at = NOW + timedelta(minutes=10)
        db.session.commit()
        # The same job (and its memory of the last run), on a database that answers.
        tick = lambda later: housekeeping.func(up, clock=lambda: NOW + later)  # noqa: E731
        assert tick(timedelta(minutes=15)) == 1
        assert tick(timedelta(minutes=30)) is None
        assert tick(timedelta(days=1, minutes=15)) == 0


def test_a_dispatch_still_running_at_the_next_tick_is_skipped_quietly(app, server, caplog):
    jobs = scheduled_jobs(app)
    dispatch_job = jobs["dispatch"]
    # APScheduler itself would warn at every tick if the job were at its instance limit.
    assert dispatch_job.max_instances > 1
    commit(queue_confirmation(make_event(), "a@example.org"))
    db.session.remove()
    stall = server.handler.stall_at_mail()
    long_run = threading.Thread(target=run_job, args=(dispatch_job,))
    long_run.start()
    try:
        wait_for(stall.reached.wait(DEADLINE_SECONDS), "the first dispatch to reach the server")
        with caplog.at_level(logging.DEBUG, logger="notifications.worker"):
            assert run_job(dispatch_job) is None  # returns at once, sends nothing
        assert all(r.levelno < logging.WARNING for r in caplog.records)
        assert "previous run is still going" in caplog.text
    finally:
        stall.release()
        long_run.join(DEADLINE_SECONDS)
    assert len(server.handler.delivered) == 1
