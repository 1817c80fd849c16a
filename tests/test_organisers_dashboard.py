"""The console's dashboard: every event, upcoming and running first, with its people and emails
counted by status, times in the organiser's own zone."""

import re
import uuid
from datetime import timedelta

import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from tests.conftest import NOW, make_event, make_registration


def make_message(registration, status, kind="confirmation", **fields):
    """Add an outbox row for the registration (due now, sendable until the event ends)."""
    values = {
        "registration": registration,
        "event": registration.event,
        "kind": kind,
        "status": status,
        "message_id": f"<{uuid.uuid4().hex}@example.org>",
        "recipient": registration.email,
        "created_at": NOW,
        "due_at": NOW,
        "expires_at": registration.event.ends_at,
    }
    values.update(fields)
    message = Message(**values)
    db.session.add(message)
    db.session.flush()
    return message


def row_of(page: str, slug: str) -> str:
    match = re.search(rf'<tr id="event-{slug}".*?</tr>', page, re.S)
    assert match, f"no row for {slug}"
    return match.group(0)


def counts(page: str, slug: str) -> dict[str, str]:
    """The numbers in an event's row, by what they count."""
    return dict(re.findall(r'data-count="(\w+)">(?:<a [^>]*>)?([^<]+)', row_of(page, slug)))


def slugs_in_order(page: str) -> list[str]:
    return re.findall(r'<tr id="event-([a-z0-9-]+)"', page)


def test_dashboard_counts_each_events_registrations_and_emails_by_status(admin):
    busy = make_event(slug="busy", capacity=2)
    quiet = make_event(slug="quiet", starts_at=NOW + timedelta(days=40))
    people = [make_registration(busy, email=f"p{i}@example.org") for i in range(2)]
    people += [make_registration(busy, status="waitlisted", confirmed_at=None,
                                 email=f"w{i}@example.org") for i in range(3)]
    people.append(make_registration(busy, status="cancelled", email="gone@example.org"))
    make_registration(quiet, email="only@example.org")
    for status, number in (("sent", 4), ("pending", 5), ("failed", 2), ("skipped", 1)):
        for i in range(number):
            make_message(people[i % len(people)], status)
    db.session.commit()

    page = admin.get("/admin/").get_data(as_text=True)

    # Pending: the rows, and the reminders still to be written (3 for each seat holder).
    assert counts(page, "busy") == {"capacity": "2", "confirmed": "2", "waitlisted": "3",
                                    "registrations": "5", "people": "5",
                                    "cancelled": "1", "sent": "4", "pending": str(5 + 2 * 3),
                                    "failed": "2", "undeliverable": "0"}
    assert counts(page, "quiet") == {"capacity": "no limit", "confirmed": "1",
                                     "waitlisted": "0", "registrations": "1", "people": "1",
                                     "cancelled": "0", "sent": "0", "pending": "3",
                                     "failed": "0", "undeliverable": "0"}
    # Failures stand out and lead to the event's list of them.
    assert 'href="/admin/events/busy#failed"' in row_of(page, "busy")


def test_dashboard_lists_upcoming_and_running_events_soonest_first_then_past_latest_first(admin):
    make_event(slug="next-month", starts_at=NOW + timedelta(days=30))
    make_event(slug="tomorrow", starts_at=NOW + timedelta(days=1))
    make_event(slug="running", starts_at=NOW - timedelta(minutes=30))
    make_event(slug="last-week", starts_at=NOW - timedelta(days=7))
    make_event(slug="yesterday", starts_at=NOW - timedelta(days=1))
    make_event(slug="called-off", starts_at=NOW + timedelta(days=3), status="cancelled")

    page = admin.get("/admin/").get_data(as_text=True)

    assert slugs_in_order(page) == ["running", "tomorrow", "called-off", "next-month",
                                    "yesterday", "last-week"]
    assert page.index("Upcoming and running") < page.index("running now") < page.index("Past")
    assert page.count("running now") == 1, "a session that has ended is not running"
    assert "cancelled" in row_of(page, "called-off")


def test_dashboard_shows_each_events_time_and_kind_in_the_organisers_zone(admin, organiser):
    organiser.timezone = "Asia/Tokyo"
    db.session.commit()
    starts_at = NOW.replace(hour=5, minute=0) + timedelta(days=10)  # 14:00 in Tokyo
    make_event(slug="tokyo-time", kind="workshop", starts_at=starts_at)

    row = row_of(admin.get("/admin/").get_data(as_text=True), "tokyo-time")

    assert "Monday 30 June 2025, 14:00–15:30 Japan Standard Time" in row
    assert "workshop" in row


def test_dashboard_takes_as_many_queries_for_many_events_as_for_one(app, admin):
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    def queries_for_dashboard():
        statements.clear()
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert admin.get("/admin/").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    first = make_event(slug="event-0")
    make_message(make_registration(first), "sent")
    db.session.commit()
    with_one = queries_for_dashboard()
    for number in range(1, 8):
        event = make_event(slug=f"event-{number}")
        make_message(make_registration(event, email=f"p{number}@example.org"), "pending")
        db.session.commit()

    assert queries_for_dashboard() == with_one


def test_dashboard_links_to_creating_an_event_and_uploading_a_programme(admin):
    page = admin.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/events/new"' in page
    assert 'href="/admin/programme"' in page


def forum_counts(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-count="forum-(\w+)">([^<]+)', page))


def test_dashboard_counts_a_person_once_for_the_forum_and_once_per_session(admin):
    first = make_event(slug="first")
    second = make_event(slug="second", starts_at=NOW + timedelta(days=40))
    # The same person in both sessions, once spelled with capitals: one address, one person.
    make_registration(first, email="aiko.tanaka@example.org")
    make_registration(second, email="Aiko.Tanaka@Example.org",
                      email_key="aiko.tanaka@example.org", status="waitlisted",
                      confirmed_at=None)
    make_registration(first, email="ben@example.org")
    # Cancelled registrations count in their own column only, as in the registrations:
    # someone who cancelled and signed up again is one registration and one person; someone
    # who only cancelled is neither.
    make_registration(second, email="ben@example.org", status="cancelled", cancelled_at=NOW)
    make_registration(second, email="ben@example.org")
    make_registration(second, email="gone@example.org", status="cancelled", cancelled_at=NOW)
    db.session.commit()

    page = admin.get("/admin/").get_data(as_text=True)

    assert counts(page, "first")["registrations"] == "2"
    assert counts(page, "first")["people"] == "2"
    second_row = counts(page, "second")
    assert (second_row["registrations"], second_row["people"], second_row["cancelled"]) == (
        "2", "2", "2")
    assert forum_counts(page) == {"registrations": "4", "people": "2", "undeliverable": "0"}
    assert "Registrations, whole forum" in page and "People, whole forum" in page


def test_dashboard_counts_no_people_without_registrations(admin):
    make_event(slug="empty")
    page = admin.get("/admin/").get_data(as_text=True)
    assert forum_counts(page) == {"registrations": "0", "people": "0", "undeliverable": "0"}
    assert (counts(page, "empty")["registrations"], counts(page, "empty")["people"]) == (
        "0", "0")


def test_an_anonymised_registration_counts_as_a_person_of_its_own(admin):
    from registration import retention

    # Once the data of one of the two is wiped, nobody can tell that they were one person.
    make_registration(make_event(slug="kept"), email="one@example.org")
    gone = make_registration(make_event(slug="wiped", starts_at=NOW + timedelta(days=40)),
                             email="one@example.org")
    db.session.commit()
    assert forum_counts(admin.get("/admin/").get_data(as_text=True))["people"] == "1"
    retention.anonymise([gone], NOW)
    db.session.commit()
    page = admin.get("/admin/").get_data(as_text=True)
    assert forum_counts(page) == {"registrations": "2", "people": "2", "undeliverable": "0"}


def test_an_address_that_bounced_for_good_is_counted_and_shown_on_its_registrations(admin):
    from registration import people

    first, second = make_event(slug="first"), make_event(slug="second",
                                                         starts_at=NOW + timedelta(days=40))
    bounced = make_registration(first, email="dead@example.org", rsvp="accepted")
    make_registration(second, email="dead@example.org")
    make_registration(first, email="fine@example.org")
    people.mark_undeliverable(bounced.email_key, "5.1.1 smtp; 550 5.1.1 User unknown", NOW)
    db.session.commit()

    page = admin.get("/admin/").get_data(as_text=True)

    assert counts(page, "first")["undeliverable"] == "1"
    assert counts(page, "second")["undeliverable"] == "1"
    assert forum_counts(page) == {"registrations": "3", "people": "2", "undeliverable": "1"}
    event_page = admin.get("/admin/events/first").get_data(as_text=True)
    row = next(line for line in event_page.split("<tr>") if "dead@example.org" in line)
    assert "undeliverable" in row and "550 5.1.1 User unknown" in row
    assert "<td>accepted</td>" in row
    fine = next(line for line in event_page.split("<tr>") if "fine@example.org" in line)
    assert "undeliverable" not in fine
