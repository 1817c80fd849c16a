"""What the console reads about attendees across sessions: the search by name, address or
organisation, and everything one registration's page shows."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from extensions import db
from notifications.models import Message
from organisers.models import Organiser
from registration.models import Event, Registration
from registration.text import clean_text, without_controls

PAGE_SIZE = 50
# Longer searches find nobody anyway: no searched column holds more than 320 characters.
MAX_QUERY = 320


@dataclass
class SearchPage:
    """One page of the attendees a search found, and where it stands among the others."""

    query: str
    rows: list[Registration]
    total: int
    page: int
    pages: int

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first(self) -> int:
        """The position of the page's first row among all the rows found (1-based)."""
        return (self.page - 1) * PAGE_SIZE + 1 if self.rows else 0


def clean_query(raw: str | None) -> str:
    """The typed search as it is looked for: trimmed, without control characters (PostgreSQL
    refuses a NUL), at most MAX_QUERY characters."""
    return clean_text(without_controls(raw or ""))[:MAX_QUERY]


def search(query: str, page: int) -> SearchPage:
    """The registrations (every session, any status, those with data) whose name, address or
    organisation holds `query`, case aside and `%` or `_` as themselves; newest first."""
    needle = query.lower()
    matches = sa.or_(*(sa.func.lower(column).contains(needle, autoescape=True)
                       for column in (Registration.name, Registration.email,
                                      Registration.organisation)))
    found = (Registration.anonymised_at.is_(None), matches)
    total = db.session.scalar(sa.select(sa.func.count(Registration.id)).where(*found))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = db.session.scalars(
        sa.select(Registration)
        .join(Event, Registration.event_id == Event.id)
        .options(contains_eager(Registration.event))
        .where(*found)
        .order_by(Registration.registered_at.desc(), Registration.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return SearchPage(query, rows, total, page, pages)


def registration_or_none(registration_id: int) -> Registration | None:
    """The registration with its session and the person behind its address."""
    return db.session.scalar(
        sa.select(Registration).where(Registration.id == registration_id)
        .options(selectinload(Registration.person), selectinload(Registration.event)))


def messages_of(registration: Registration) -> list[Message]:
    """Every email of the registration, sent, waiting or not sent, in the order they are due."""
    return db.session.scalars(
        sa.select(Message).where(Message.registration_id == registration.id)
        .order_by(Message.due_at, Message.id)
    ).all()


def added_by(registration: Registration) -> Organiser | None:
    """The organiser who added the registration by hand, while their account exists."""
    if registration.added_by_organiser_id is None:
        return None
    return db.session.get(Organiser, registration.added_by_organiser_id)
