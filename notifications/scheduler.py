"""The scheduler that runs the dispatcher: embedded in `flask run`, never under gunicorn."""

import atexit
import logging

import click

log = logging.getLogger(__name__)


def is_serving_process() -> bool:
    """True in the process where `flask run` serves requests (the reloader's child, if any)."""
    from flask.helpers import get_debug_flag
    from werkzeug.serving import is_running_from_reloader

    # create_app runs inside the click context of the command that loads it: under gunicorn
    # there is none, and `flask dispatch`, `flask db …` are not "run".
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command.name != "run":
        return False
    reload = ctx.params.get("reload")
    if reload is None:  # as `flask run` decides: the reloader follows the debug flag
        reload = get_debug_flag()
    # With the reloader the parent only watches files; its child serves (and restarts).
    return not reload or is_running_from_reloader()


def _dispatch_job(app) -> None:
    from extensions import db
    from notifications.dispatcher import dispatch_due

    with app.app_context():
        try:
            summary = dispatch_due(app.config["CLOCK"])
        finally:
            db.session.remove()
    if summary.claimed:
        log.info("%s", summary)


def start_embedded_if_serving(app):
    """Start one background dispatcher when this process is `flask run`'s serving process."""
    if app.config.get("SCHEDULER") != "embedded" or not is_serving_process():
        return None
    from apscheduler.schedulers.background import BackgroundScheduler

    # Memory job store: the job is fixed in code and the outbox lives in the database.
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        _dispatch_job,
        "interval",
        seconds=app.config["DISPATCH_INTERVAL_SECONDS"],
        args=[app],
        id="dispatch",
        coalesce=True,
        max_instances=1,
        # A tick that starts late still runs (once, coalesced) rather than being dropped.
        misfire_grace_time=None,
    )
    scheduler.start()
    atexit.register(_shutdown, scheduler)
    app.extensions["notifications_scheduler"] = scheduler
    log.info("embedded dispatcher started: every %ss", app.config["DISPATCH_INTERVAL_SECONDS"])
    return scheduler


def _shutdown(scheduler) -> None:
    if scheduler.running:
        scheduler.shutdown(wait=False)
