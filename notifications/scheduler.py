"""The scheduler embedded in `flask run` for development (production runs `flask worker`);
never under gunicorn."""

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


def start_embedded_if_serving(app):
    """Start one background dispatcher when this process is `flask run`'s serving process."""
    if app.config.get("SCHEDULER") != "embedded" or not is_serving_process():
        return None
    from apscheduler.schedulers.background import BackgroundScheduler

    from notifications.worker import add_jobs, mailbox_words

    # Memory job store: the jobs are fixed in code and the outbox lives in the database.
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, app)
    scheduler.start()
    atexit.register(_shutdown, scheduler)
    app.extensions["notifications_scheduler"] = scheduler
    log.info("embedded dispatcher started: every %ss, %s", app.config["DISPATCH_INTERVAL_SECONDS"],
             mailbox_words(app.config))
    return scheduler


def _shutdown(scheduler) -> None:
    if scheduler.running:
        scheduler.shutdown(wait=False)
