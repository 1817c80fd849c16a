"""Command-line tools for the outbox: dispatch."""

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext


def parse_now(ctx, param, value: str | None) -> datetime | None:
    """The --now option: an ISO 8601 instant with its offset (e.g. 2025-07-01T09:00:00Z)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time; write e.g. 2025-07-01T09:00:00Z"
        ) from None
    if moment.tzinfo is None:
        # A bare local time would be read in whatever zone this machine is in: refuse to guess.
        raise click.BadParameter(
            f"{value!r} has no time zone; add Z or an offset, e.g. 2025-07-01T09:00:00Z"
        )
    return moment.astimezone(UTC)


@click.command("dispatch")
@click.option("--now", metavar="ISO8601", callback=parse_now,
              help="Send what is due at this instant instead of the current time.")
@with_appcontext
def dispatch_command(now):
    """Send every email that is due, then print one summary line."""
    from notifications.dispatcher import dispatch_due

    clock = (lambda: now) if now else current_app.config["CLOCK"]
    summary = dispatch_due(clock)
    click.echo(str(summary))
    if summary.stopped:
        click.echo(f"dispatch stopped: {summary.stopped}", err=True)
        raise SystemExit(1)


def init_app(app):
    """Register the outbox commands on the app's CLI."""
    app.cli.add_command(dispatch_command)
