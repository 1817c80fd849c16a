"""The worker: the outbox's fixed jobs (dispatch every few seconds, housekeeping daily, the
mailbox every minute when one is read) on an APScheduler BlockingScheduler in a process of its
own, stopped cleanly by SIGTERM or SIGINT."""

import functools
import imaplib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from extensions import db, describe_database_error

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = timedelta(days=1)
# How often the scheduler asks whether housekeeping is due: a run that failed (the database was
# down when the worker started) is tried again this soon, not a day later.
HOUSEKEEPING_RETRY = timedelta(minutes=15)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def dispatch_job(app, should_stop: Callable[[], bool] | None = None, worker_id=None,
                 clock: Callable[[], datetime] | None = None):
    """Write the reminders due, then send everything due at the app's clock, in an app context
    of its own."""
    from notifications.dispatcher import DispatchSummary, dispatch_due
    from notifications.reminders import plan_and_commit

    if should_stop and should_stop():
        return DispatchSummary()  # queued before the stop, started after it
    with app.app_context():
        try:
            clock = clock or current_app.config["CLOCK"]
            plan_and_commit(clock())
            return dispatch_due(clock, worker_id=worker_id, should_stop=should_stop)
        finally:
            db.session.remove()


def housekeeping_job(app, should_stop: Callable[[], bool] | None = None,
                     clock: Callable[[], datetime] | None = None) -> int | None:
    """End every pending message whose window has closed as skipped ("expired"), and anonymise
    the registrations past the retention period; how many messages were skipped."""
    from notifications.claims import skip_expired
    from registration import replies, retention

    if should_stop and should_stop():
        return None
    with app.app_context():
        try:
            now = (clock or current_app.config["CLOCK"])()
            count = skip_expired(now)
            retention_days = current_app.config["RETENTION_DAYS"]
            purged = retention.purge(now, retention_days)
            # What was read from the replies mailbox is kept only as long as what it acted on.
            replies.forget_handled(now - timedelta(days=retention_days))
            db.session.commit()
        finally:
            db.session.remove()
    log.info("housekeeping: %s pending messages past their window skipped as expired; %s",
             count, purged)
    return count


class DailyHousekeeping:
    """Housekeeping once a day, counted from its last run that succeeded: the scheduler asks
    every HOUSEKEEPING_RETRY, so a run that failed is tried again within the hour."""

    def __init__(self):
        self.done_at: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        """True when housekeeping has not succeeded in the last day (or ever)."""
        return self.done_at is None or now - self.done_at >= HOUSEKEEPING_INTERVAL

    def __call__(self, app, should_stop: Callable[[], bool] | None = None,
                 clock: Callable[[], datetime] | None = None) -> int | None:
        """Run housekeeping at the app's clock if it is due; how many messages it skipped."""
        now = (clock or app.config["CLOCK"])()
        if not self.is_due(now):
            return None
        count = housekeeping_job(app, should_stop, lambda: now)
        if count is not None:
            self.done_at = now
        return count


def mailbox_job(app, should_stop: Callable[[], bool] | None = None,
                clock: Callable[[], datetime] | None = None, act=None):
    """Read the mailbox (IMAP_FOLDER) once at the app's clock, in an app context of its own;
    `act` decides what each message is (default: registration.replies.act_on)."""
    from notifications.mailbox import read_mailbox

    if act is None:
        from registration.replies import act_on as act
    if should_stop and should_stop():
        return None
    with app.app_context():
        try:
            summary = read_mailbox(app.config, act, (clock or app.config["CLOCK"])(),
                                   should_stop=should_stop)
        finally:
            db.session.remove()
    if summary.examined:  # a line a minute saying "nothing" would drown the others
        log.info("%s", summary)
    return summary


def _one_line_when_the_mailbox_is_unreachable(name: str, job):
    """A scheduled job that logs one line, no traceback, when the IMAP server can't be reached
    or refuses us; the next run tries again."""
    from notifications.imap import MailboxError

    @functools.wraps(job)
    def run(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        except (MailboxError, OSError, imaplib.IMAP4.error) as exc:
            log.error("%s failed (%s); trying again at its next run", name, exc)
            return None

    return run


def _one_line_when_the_database_is_down(name: str, job):
    """A scheduled job that logs one line, no traceback, when the database can't be reached;
    the next run tries again."""

    @functools.wraps(job)
    def run(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        except sa.exc.OperationalError as exc:
            log.error("%s failed, the database is unavailable (%s); trying again at its next "
                      "run", name, describe_database_error(exc))
            return None

    return run


def _skipped_while_running(name: str, job):
    """A scheduled job that returns at once while its previous run is still going, instead of
    making APScheduler warn at every tick until that run ends."""
    running = threading.Lock()

    @functools.wraps(job)
    def run(*args, **kwargs):
        if not running.acquire(blocking=False):
            log.debug("%s: the previous run is still going; this one is skipped", name)
            return None
        try:
            return job(*args, **kwargs)
        finally:
            running.release()

    return run


def add_jobs(scheduler, app, *, should_stop=None, worker_id=None, wrap=lambda job: job,
             run_at_start: bool = False) -> None:
    """The outbox's fixed jobs, on any APScheduler 3 scheduler with an in-memory job store;
    the mailbox's too when IMAP_HOST is set.

    With `run_at_start` they also run straight away (a worker may have been down a while).
    """
    common = {
        "coalesce": True,  # after a pause or a slow run, one catch-up run, not a burst
        # Two, so that a tick during a long run reaches the job, which skips it quietly.
        "max_instances": 2,
        "misfire_grace_time": None,  # a late run still happens rather than being dropped
        "replace_existing": True,
    }
    if run_at_start:
        common["next_run_time"] = datetime.now(UTC)
    dispatch = _skipped_while_running(
        "dispatch", _one_line_when_the_database_is_down("dispatch", dispatch_job))
    housekeeping = _skipped_while_running(
        "housekeeping", _one_line_when_the_database_is_down("housekeeping", DailyHousekeeping()))
    scheduler.add_job(wrap(dispatch), "interval", id="dispatch",
                      seconds=app.config["DISPATCH_INTERVAL_SECONDS"],
                      args=[app, should_stop, worker_id], **common)
    scheduler.add_job(wrap(housekeeping), "interval", id="housekeeping",
                      seconds=HOUSEKEEPING_RETRY.total_seconds(), args=[app, should_stop],
                      **common)
    if app.config.get("IMAP_HOST"):
        mailbox = _skipped_while_running("mailbox", _one_line_when_the_database_is_down(
            "mailbox", _one_line_when_the_mailbox_is_unreachable("mailbox", mailbox_job)))
        scheduler.add_job(wrap(mailbox), "interval", id="mailbox",
                          seconds=app.config["MAILBOX_INTERVAL_SECONDS"],
                          args=[app, should_stop], **common)


def mailbox_words(config) -> str:
    """What the worker does with the mailbox, for its start line."""
    if not config.get("IMAP_HOST"):
        return "no mailbox read (IMAP_HOST is not set)"
    return (f"mailbox {config['IMAP_FOLDER']} on {config['IMAP_HOST']} read every "
            f"{config['MAILBOX_INTERVAL_SECONDS']}s")


class _RunningJobs:
    """Counts the jobs running in the scheduler's threads, so the process can wait for them."""

    def __init__(self):
        self._count = 0
        self._changed = threading.Condition()

    def wrap(self, function):
        @functools.wraps(function)
        def tracked(*args, **kwargs):
            with self._changed:
                self._count += 1
            try:
                return function(*args, **kwargs)
            finally:
                with self._changed:
                    self._count -= 1
                    self._changed.notify_all()

        return tracked

    def wait_until_idle(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._count == 0)


class StopRequest:
    """Set by SIGTERM or SIGINT (see stop_on_signals); remembers which."""

    def __init__(self):
        self._event = threading.Event()
        self.signal_name: str | None = None

    def is_set(self) -> bool:
        """True once a stop signal has come."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop signal comes (or the timeout passes)."""
        return self._event.wait(timeout)

    def set(self, signal_name: str) -> None:
        """Record the signal and wake whoever waits."""
        self.signal_name = signal_name
        self._event.set()


@contextmanager
def stop_on_signals():
    """A StopRequest that SIGTERM and SIGINT set while inside (main thread only); the previous
    handlers are restored after. A second signal ends the process at once."""
    request = StopRequest()

    def handle(signum, frame):
        # Only set a flag: the handler runs in the main thread between two bytecodes, maybe
        # while that thread holds a non-reentrant lock (a thread pool's, a stream's) that
        # logging or a scheduler shutdown would take again, and wait for forever.
        if request.is_set():
            # A second signal means "now": die as the signal would, claims and all (their
            # leases run out and another dispatcher sends them).
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        request.set(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def configure_logging() -> None:
    """INFO lines to stderr with time and logger, unless logging is already set up."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    # APScheduler's INFO lines ("Running job …" every few seconds) say nothing the worker's
    # own lines don't; its warnings (a missed run) and errors still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def run_once(app, clock: Callable[[], datetime] | None = None):
    """Housekeeping, then one dispatch of everything due; the dispatch's summary.

    SIGTERM or SIGINT stops it as it stops the worker.
    """
    with stop_on_signals() as stopping:
        housekeeping_job(app, stopping.is_set, clock)
        return dispatch_job(app, stopping.is_set, clock=clock)


def run(app) -> None:
    """Run the scheduler until SIGTERM or SIGINT, then finish the message in flight, give back
    the other claims and return."""
    from apscheduler.events import EVENT_SCHEDULER_STARTED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.blocking import BlockingScheduler

    pid = os.getpid()
    # No persistent job store: the jobs are fixed here and the outbox is in the database, so
    # any number of workers may run side by side without sharing scheduler state.
    scheduler = BlockingScheduler(
        timezone=UTC,
        jobstores={"default": MemoryJobStore()},
        # A long dispatch, housekeeping, the mailbox, and the tick that finds one still running.
        executors={"default": ThreadPoolExecutor(max_workers=4)},
    )
    running = _RunningJobs()

    def shut_down(event=None):
        if scheduler.running:
            # wait=False: the job in flight finishes on its own and is waited for below.
            scheduler.shutdown(wait=False)

    with stop_on_signals() as stopping:

        def on_stop():  # a thread of its own, not the signal handler (see stop_on_signals)
            stopping.wait()
            log.info("worker %s: %s received; finishing the message in flight", pid,
                     stopping.signal_name)
            shut_down()

        stopper = threading.Thread(target=on_stop, name="stop-on-signal", daemon=True)
        stopper.start()
        add_jobs(scheduler, app, should_stop=stopping.is_set,
                 worker_id=f"{socket.gethostname()}:{pid}", wrap=running.wrap, run_at_start=True)
        # A signal that came before the scheduler was running stops it as soon as it is.
        scheduler.add_listener(lambda event: stopping.is_set() and shut_down(),
                               EVENT_SCHEDULER_STARTED)
        with app.app_context():
            database = db.engine.dialect.name
        log.info("worker %s started: dispatch every %ss, housekeeping daily, %s, database %s",
                 pid, app.config["DISPATCH_INTERVAL_SECONDS"], mailbox_words(app.config),
                 database)
        if not stopping.is_set():
            scheduler.start()  # returns once shut down
        # The dispatch in flight sees the stop flag after its current message and gives back
        # the rest of its claims; wait for that before saying we stopped.
        running.wait_until_idle()
        if stopping.is_set():
            stopper.join(5)  # its line ("… received") comes before ours, however early it came
    log.info("worker %s stopped", pid)
