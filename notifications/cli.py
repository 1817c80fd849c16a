"""Command-line tools for the outbox: dispatch once, run the worker, read the mailbox once,
print the DKIM record."""

from datetime import UTC, datetime
from typing import NoReturn

import click
from flask import current_app
from flask.cli import with_appcontext


def _refuse(ctx, text: str) -> NoReturn:
    # One line that says what to fix, not click's usage block.
    click.echo(f"Error: {text}", err=True)
    ctx.exit(2)


def parse_now(ctx, param, value: str | None) -> datetime | None:
    """The --now option: an ISO 8601 instant with its offset (e.g. 2025-07-01T09:00:00Z)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        _refuse(ctx, f"--now {value!r} is not an ISO 8601 time; write e.g. 2025-07-01T09:00:00Z")
    if moment.tzinfo is None:
        # A bare local time would be read in whatever zone this machine is in: refuse to guess.
        _refuse(ctx, f"--now {value!r} has no time zone; add Z or an offset, "
                     "e.g. 2025-07-01T09:00:00Z")
    return moment.astimezone(UTC)


def _report(summary) -> None:
    click.echo(str(summary))
    if summary.stopped:
        click.echo(f"dispatch stopped: {summary.stopped}", err=True)
        raise SystemExit(1)


@click.command("dispatch")
@click.option("--now", metavar="ISO8601", callback=parse_now,
              help="Send what is due at this instant instead of the current time.")
@with_appcontext
def dispatch_command(now):
    """Send every email that is due, then print one summary line.

    SIGTERM or Ctrl-C finishes the message in flight and leaves the rest pending.
    """
    from notifications.dispatcher import dispatch_due
    from notifications.reminders import plan_and_commit
    from notifications.worker import stop_on_signals

    clock = (lambda: now) if now else current_app.config["CLOCK"]
    with stop_on_signals() as stopping:
        plan_and_commit(clock())
        summary = dispatch_due(clock, should_stop=stopping.is_set)
    _report(summary)


@click.command("worker")
@click.option("--once", is_flag=True,
              help="Run housekeeping and one dispatch of everything due, then exit.")
@click.option("--now", metavar="ISO8601", callback=parse_now,
              help="With --once: act at this instant instead of the current time.")
@click.pass_context
@with_appcontext
def worker_command(ctx, once, now):
    """Dispatch due email every DISPATCH_INTERVAL_SECONDS and do housekeeping daily, until
    SIGTERM or Ctrl-C (which finish the message in flight and leave the rest pending)."""
    from notifications import worker

    if now and not once:
        _refuse(ctx, "--now only goes with --once; a running worker follows the clock")
    worker.configure_logging()
    app = current_app._get_current_object()
    if once:
        _report(worker.run_once(app, (lambda: now) if now else None))
        return
    worker.run(app)


@click.command("read-mailbox")
@click.option("--now", metavar="ISO8601", callback=parse_now,
              help="Act as at this instant instead of the current time.")
@click.pass_context
@with_appcontext
def read_mailbox_command(ctx, now):
    """Read IMAP_FOLDER once: act on calendar replies and bounces and move them to
    IMAP_DONE_FOLDER, leave everything else for people; then print one summary line."""
    from notifications.imap import MailboxError
    from notifications.mailbox import read_mailbox
    from notifications.worker import stop_on_signals

    config = current_app.config
    if not config["IMAP_HOST"]:
        _refuse(ctx, "IMAP_HOST is not set: there is no mailbox to read")
    from registration.replies import act_on

    try:
        with stop_on_signals() as stopping:
            summary = read_mailbox(config, act_on, now or config["CLOCK"](),
                                   should_stop=stopping.is_set)
    except MailboxError as exc:  # one line naming the server and why, never a traceback
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(1)
    click.echo(str(summary))


@click.command("dkim-record")
@click.pass_context
@with_appcontext
def dkim_record_command(ctx):
    """Print the DNS TXT record that publishes the DKIM key (DKIM_PRIVATE_KEY_PATH) under
    DKIM_SELECTOR._domainkey.DKIM_DOMAIN."""
    from notifications import dkim

    config = current_app.config
    if not config.get("DKIM_PRIVATE_KEY"):
        _refuse(ctx, "DKIM_PRIVATE_KEY_PATH is not set: there is no key to publish")
    click.echo(dkim.record(config["DKIM_PRIVATE_KEY"], config["DKIM_SELECTOR"],
                           config["DKIM_DOMAIN"]))


def init_app(app):
    """Register the outbox commands on the app's CLI."""
    app.cli.add_command(dispatch_command)
    app.cli.add_command(dkim_record_command)
    app.cli.add_command(read_mailbox_command)
    app.cli.add_command(worker_command)
