"""Command-line tools for the programme: import, demo data, attendee export."""

from pathlib import Path

import click
from flask import current_app
from sqlalchemy.exc import IntegrityError

from extensions import db
from registration import times


@click.command("import-programme")
@click.argument("file", type=click.File("rb"))
@click.option("--keep-seats", is_flag=True,
              help="Lower a capacity below the seats already taken: nobody loses a seat, and "
                   "new sign-ups join the waiting list until enough people cancel.")
def import_programme_command(file, keep_seats):
    """Create or update events by slug from a programme CSV: every row, or none if any is bad."""
    from registration.programme import MAX_FILE_BYTES

    # One byte more than allowed is enough for the check to say the file is too large.
    data = file.read(MAX_FILE_BYTES + 1)
    summary = _import(data, source=file.name, keep_seats=keep_seats)
    click.echo(str(summary))


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the programme has any event.")
def seed_demo_command(if_empty):
    """Load a demo programme for the next July–October forum; running it again changes nothing."""
    import sqlalchemy as sa

    from registration import demo
    from registration.models import Event

    if if_empty and db.session.scalar(sa.select(Event.id).limit(1)) is not None:
        click.echo("The programme already has events; the demo was not loaded.")
        return
    year = demo.forum_year(times.now())
    summary = _import(demo.demo_programme_csv(year), source="the demo programme")
    click.echo(f"Demo programme for July–October {year}: {summary}")


def _import(data: bytes, source: str, keep_seats: bool = False):
    """Check and apply a programme in one transaction; print every problem and stop on any."""
    from registration.programme import (
        ProgrammeRejected,
        apply_programme,
        parse_programme,
        stored_events,
    )

    now = times.now()
    rows, problems = parse_programme(data, stored_events(),
                                     max_rows=current_app.config["PROGRAMME_MAX_ROWS"])
    hint = ""
    if not problems:
        try:
            summary = apply_programme(rows, now, keep_seats=keep_seats)
            db.session.commit()
            return summary
        except ProgrammeRejected as exc:
            problems = exc.problems
            if exc.seats_taken:
                hint = (" To lower a capacity below the seats already taken anyway (nobody "
                        "loses a seat), run it again with --keep-seats.")
        except IntegrityError:
            db.session.rollback()
            raise click.ClickException(
                "The programme changed while importing (another import at the same time?); "
                "nothing was imported. Run it again."
            ) from None
    db.session.rollback()
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems.more:
        click.echo(f"…and {problems.more} more", err=True)
    count = f"{problems.total} problem{'s' if problems.total != 1 else ''}"
    raise click.ClickException(f"Nothing was imported: {count} in {source}.{hint}")


@click.command("export-attendees")
@click.argument("slug", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def export_attendees_command(slug, output):
    """Write the attendees of one event (or of every event) as CSV for Excel."""
    import sqlalchemy as sa

    from registration.export import attendees_csv
    from registration.models import Event

    event = None
    if slug is not None:
        event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
        if event is None:
            raise click.ClickException(f"No event has the slug {slug!r}.")
    chunks = attendees_csv(event)
    if output is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)  # bytes go to the binary stdout untouched
        return
    # Written aside and renamed at the end, so a failed export never looks like a whole one.
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
        partial.replace(output)
    except OSError as exc:
        raise click.ClickException(f"Can't write {output}: {exc.strerror}.") from None
    finally:
        partial.unlink(missing_ok=True)


def init_app(app):
    """Register the programme commands on the app's CLI."""
    app.cli.add_command(import_programme_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(export_attendees_command)
