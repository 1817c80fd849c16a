"""The programme from CSV: check a file (all rows or none), then create or update events by slug.

`parse_programme` is pure and answers rows or problems; `apply_programme` is the service that
writes them. The CLI and the organiser console's upload preview share both. The checks of one
event's cells live in `programme_rules`, the reading of a file in `programme_file`; their
public names are importable from here too.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from extensions import db
from registration import changes
from registration.models import Event
from registration.programme_file import (
    MAX_FILE_BYTES,
    MAX_PROBLEMS,
    Problem,
    Problems,
    ProgrammeRow,
    parse_programme,
)
from registration.programme_rules import COLUMNS, DEFAULTS, StoredEvent, check_event

__all__ = [
    "COLUMNS", "MAX_FILE_BYTES", "MAX_PROBLEMS", "ImportSummary", "PlannedChange", "Problem",
    "Problems", "ProgrammeRejected", "ProgrammeRow", "StoredEvent", "apply_programme",
    "check_event", "parse_programme", "preview_programme", "stored_events",
]


@dataclass
class ImportSummary:
    """What an import did, by slug."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    promoted: int = 0
    notified: int = 0
    plans: list["PlannedChange"] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"created {len(self.created)}, updated {len(self.updated)}, "
                f"unchanged {len(self.unchanged)}")
        if self.notified:
            text += f"; {self.notified} registrants to be told of the changes"
        if self.promoted:
            text += f"; {self.promoted} moved from the waiting list to a seat"
        return text


class ProgrammeRejected(Exception):
    """The rows can't be applied as they stand; `problems` says why, line by line.

    `seats_taken`: a row lowers a capacity below the seats already taken, which applies only
    when the organiser accepts keeping those seats (`keep_seats`).
    """

    def __init__(self, problems: list[Problem], *, seats_taken: bool = False):
        self.problems = Problems(problems)
        super().__init__("; ".join(str(p) for p in self.problems))
        self.seats_taken = seats_taken


def stored_events() -> dict[str, StoredEvent]:
    """What `parse_programme` needs to know of the events already stored, by slug."""
    result = db.session.execute(sa.select(Event.slug, Event.timezone, Event.status))
    return {slug: StoredEvent(timezone, status) for slug, timezone, status in result}


def apply_programme(rows: Sequence[ProgrammeRow], now: datetime, *,
                    keep_seats: bool = False) -> ImportSummary:
    """Create or update the events of checked rows by slug; flushes, the caller commits once.

    A column the file leaves out keeps its stored value (a new event takes the default). The
    rows come from `parse_programme(data, stored_events())`, so naive times were read in the
    right zone.

    Raises ProgrammeRejected, having changed nothing, if the change service refuses a row (a
    cancelled event reopened, a session moved into the past, a capacity below the seats
    already taken without `keep_seats`).
    """
    slugs = [row.slug for row in rows]
    existing = {}
    if slugs:
        existing = {
            event.slug: event
            for event in db.session.scalars(
                sa.select(Event)
                .where(Event.slug.in_(slugs))
                .with_for_update()
                # Locked rows read afresh, not as an earlier query left them in the session.
                .execution_options(populate_existing=True)
            )
        }
    # Checked here, under the lock, all before any change: a file applies whole or not at all.
    refusals = [
        (row.line, refusal)
        for row in rows
        if row.slug in existing
        and (refusal := changes.check_change(existing[row.slug], row.values, now,
                                              keep_seats=keep_seats))
    ]
    if refusals:
        raise ProgrammeRejected(
            [Problem(line, str(refusal)) for line, refusal in refusals],
            seats_taken=any(refusal.field == "capacity" for _, refusal in refusals),
        )

    summary = ImportSummary()
    for row in rows:
        event = existing.get(row.slug)
        if event is None:
            event = Event(slug=row.slug, **{**DEFAULTS, **row.values}, confirmed_count=0,
                          created_at=now, updated_at=now)
            db.session.add(event)
            summary.created.append(row.slug)
            summary.plans.append(PlannedChange(row.line, row.slug, "create", event.title,
                                               event.starts_at, event.ends_at,
                                               fields=tuple(sorted(row.values)),
                                               timezone=event.timezone))
            continue
        change = changes.change_event(event, row.values, now, keep_seats=keep_seats)
        (summary.updated if change.changed else summary.unchanged).append(row.slug)
        summary.promoted += change.promoted
        summary.notified += change.notified
        summary.plans.append(PlannedChange(
            row.line, row.slug, _action(change, event), event.title, event.starts_at,
            event.ends_at, fields=tuple(change.changed), old_starts_at=change.old_starts_at,
            old_ends_at=change.old_ends_at, told=change.notified, promoted=change.promoted,
            follow_ups=change.follow_ups, timezone=event.timezone,
        ))
    db.session.flush()
    return summary


def _action(change: changes.EventChange, event: Event) -> str:
    if not change.changed:
        return "unchanged"
    if "status" in change.changed and event.is_cancelled:
        return "cancel"
    if change.old_starts_at is not None:
        return "reschedule"
    return "change"


def preview_programme(rows: Sequence[ProgrammeRow], now: datetime, *,
                      keep_seats: bool = False) -> tuple[list["PlannedChange"], Problems]:
    """What `apply_programme` would do with these rows, without doing it: a plan per row, or
    the refusals. Found by applying them in a savepoint and undoing that, so the preview and
    the real thing can never disagree."""
    savepoint = db.session.begin_nested()
    try:
        summary = apply_programme(rows, now, keep_seats=keep_seats)
    except ProgrammeRejected as exc:
        savepoint.rollback()
        return [], exc.problems
    savepoint.rollback()
    return summary.plans, Problems()


@dataclass(frozen=True)
class PlannedChange:
    """What applying one checked row would do, and to how many people, before it is done."""

    line: int
    slug: str
    action: str  # "create", "cancel", "reschedule", "change" or "unchanged"
    title: str
    starts_at: datetime
    ends_at: datetime
    fields: tuple[str, ...] = ()
    old_starts_at: datetime | None = None
    old_ends_at: datetime | None = None
    told: int = 0  # registrants who get an update or a cancellation
    promoted: int = 0  # waiting-list people who get a seat
    follow_ups: int = 0  # seat holders who get the recording link
    timezone: str = "UTC"  # the session's own zone, to show its time there too
