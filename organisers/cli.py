"""Command-line tools for organiser accounts."""

import sys

import click
from flask import current_app

from extensions import db
from notifications.cli import parse_now
from registration import times


def _read_password() -> str:
    # getpass reads the terminal before stdin, so a piped password would be ignored (and the
    # command would hang) whenever a terminal exists: read stdin directly when it is a pipe.
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


class BadZone(click.ClickException):
    """An unknown time zone: one line, and the exit status of a bad argument."""

    exit_code = 2


def _zone(ctx, param, value):
    from registration.forms import offered_zones

    if value is None or times.is_zone(value):
        # An old spelling (Asia/Calcutta) is stored as the zone the profile page offers.
        return offered_zones().get(value, value) if value else value
    raise BadZone(f"{value!r} is not a time zone: use an IANA name such as Asia/Tokyo, "
                  "Europe/Berlin or America/New_York.")


@click.command("create-organiser")
@click.argument("email")
@click.option("--reset", is_flag=True, help="Change the password of an existing organiser.")
@click.option("--timezone", metavar="ZONE", callback=_zone,
              help="The IANA time zone the console shows times in (default UTC).")
def create_organiser_command(email, reset, timezone):
    """Create an organiser account (or, with --reset, set a new password) for EMAIL."""
    from email_validator import EmailNotValidError, validate_email

    from organisers import auth
    from organisers.models import Organiser

    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise click.ClickException(f"{email!r} is not a valid email address: {exc}") from None
    existing = auth.find_organiser(email)
    if existing and not reset:
        raise click.ClickException(f"{email} already has an account; use --reset to change "
                                   "its password.")
    if reset and not existing:
        raise click.ClickException(f"{email} has no account; leave out --reset to create one.")
    try:
        password_hash = auth.hash_password(_read_password())
    except auth.PasswordTooShort as exc:
        raise click.ClickException(str(exc).capitalize() + ".") from None
    now = times.now()
    if existing:
        existing.password_hash = password_hash
        auth.revoke_sessions(existing)  # a new password signs out every session
        auth.audit("password reset", existing.email, organiser=existing, actor="cli")
        if timezone and timezone != existing.timezone:
            auth.audit("time zone changed", existing.email,
                       {"from": existing.timezone, "to": timezone}, organiser=existing,
                       actor="cli")
            existing.timezone = timezone
        click.echo(f"Password changed for {existing.email}.")
    else:
        organiser = Organiser(email=auth.email_key(email), password_hash=password_hash,
                              timezone=timezone or "UTC", created_at=now)
        db.session.add(organiser)
        db.session.flush()
        auth.audit("organiser created", organiser.email, organiser=organiser, actor="cli")
        click.echo(f"Organiser {organiser.email} created.")
    db.session.commit()


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Only say what would be anonymised.")
@click.option("--now", metavar="ISO8601", callback=parse_now,
              help="Purge as at this instant instead of the current time.")
def purge_command(dry_run, now):
    """Anonymise the personal data of registrations RETENTION_DAYS after their event ended."""
    from registration import retention

    now = now or times.now()
    days = current_app.config["RETENTION_DAYS"]
    report = retention.purge(now, days, dry_run=dry_run)
    if dry_run:
        db.session.rollback()
        click.echo(f"Dry run (nothing changed), retention {days} days: {report}")
        return
    db.session.commit()
    click.echo(f"Retention {days} days: {report}")


def init_app(app):
    """Register the organiser commands on the app's CLI."""
    app.cli.add_command(create_organiser_command)
    app.cli.add_command(purge_command)
