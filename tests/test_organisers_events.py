"""The console's event pages: create and edit every field by the importer's rules, changes that
tell registrants through the same service as the importer, confirmations before destructive
ones, attendees, the timeline of emails and retrying failed ones."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from organisers.models import AuditEntry
from registration.models import Event, Registration
from tests.conftest import NOW, make_event, make_registration, page_csrf
from tests.test_organisers_dashboard import make_message

ZONE_BERLIN = ZoneInfo("Europe/Berlin")
NEW_EVENT = {
    "slug": "heat-plans",
    "title": "Heat action plans",
    "kind": "workshop",
    "pillar": "reflect",
    "starts_at": "2025-07-07T14:00",
    "ends_at": "2025-07-07T15:30",
    "timezone": "Asia/Tokyo",
    "capacity": "40",
    "language": "ja",
    "join_url": "https://meet.example.org/j/42",
    "location": "Online",
    "description": "First line.\r\nSecond line.",
    "status": "scheduled",
    "recording_url": "",
}


def form_of(event: Event, **overrides) -> dict:
    """What the edit form of make_event()'s default event holds, with some fields changed."""
    local = event.starts_at.astimezone(ZONE_BERLIN)
    data = {
        "slug": event.slug, "title": event.title, "kind": event.kind,
        "pillar": event.pillar or "",
        "starts_at": local.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": event.ends_at.astimezone(ZONE_BERLIN).strftime("%Y-%m-%dT%H:%M"),
        "timezone": event.timezone,
        "capacity": "" if event.capacity is None else str(event.capacity),
        "language": event.language, "join_url": event.join_url or "",
        "location": event.location or "", "description": event.description,
        "status": event.status, "recording_url": event.recording_url or "",
    }
    data.update(overrides)
    return data


def post(client, path, data, token_from=None):
    data = {**data, "csrf_token": page_csrf(client, token_from or path)}
    return client.post(path, data=data)


def reload(event: Event) -> Event:
    db.session.expire_all()
    return db.session.get(Event, event.id)


def messages(kind=None, status=None) -> list[Message]:
    query = sa.select(Message).order_by(Message.id)
    if kind:
        query = query.where(Message.kind == kind)
    if status:
        query = query.where(Message.status == status)
    return db.session.scalars(query).all()


def audit_log() -> list[tuple[str, str, dict | None]]:
    return [(e.action, e.target, e.detail)
            for e in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
            if e.action not in ("signed in",)]


def error_beside(page: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
    assert match, f"no error beside {field}"
    return match.group(1)


@pytest.fixture
def booked(admin):
    """An event with two seats, both taken, and one person waiting."""
    event = make_event(capacity=2)
    make_registration(event, email="first@example.org")
    make_registration(event, email="second@example.org", name="Ben Okafor", country="NG")
    make_registration(event, email="waiting@example.org", status="waitlisted",
                      confirmed_at=None, registered_at=NOW + timedelta(minutes=5))
    event.confirmed_count = 2
    db.session.commit()
    return event


# --- creating ----------------------------------------------------------------------------------


def test_new_event_form_creates_the_event_with_every_field_and_audits_it(admin):
    response = post(admin, "/admin/events/new", NEW_EVENT)

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/events/heat-plans")
    event = db.session.scalar(sa.select(Event))
    assert (event.slug, event.title, event.kind, event.pillar, event.timezone, event.capacity,
            event.language, event.join_url, event.location, event.description, event.status,
            event.recording_url) == (
        "heat-plans", "Heat action plans", "workshop", "reflect", "Asia/Tokyo", 40, "ja",
        "https://meet.example.org/j/42", "Online", "First line.\nSecond line.", "scheduled",
        None)
    assert uuid.UUID(event.public_uid).version == 4  # its UID in the public calendars
    # Wall-clock times in the event's zone, stored in UTC.
    assert event.starts_at == datetime(2025, 7, 7, 5, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2025, 7, 7, 6, 30, tzinfo=UTC)
    assert [(action, target) for action, target, _ in audit_log()] == [
        ("event created", "heat-plans")]
    assert "Event heat-plans created." in admin.get(response.headers["Location"]).get_data(
        as_text=True)


def test_new_event_form_shows_every_problem_beside_its_field_and_creates_nothing(admin):
    bad = {**NEW_EVENT, "slug": "Heat Plans", "title": " ", "timezone": "Tokyo",
           "starts_at": "2025-07-07", "capacity": "-3", "join_url": "meet.example.org",
           "kind": "party"}
    response = post(admin, "/admin/events/new", bad)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "must be lowercase letters, digits and single hyphens" in error_beside(page, "slug")
    assert error_beside(page, "title") == "title is empty; it is required"
    assert "did you mean Asia/Tokyo?" in error_beside(page, "timezone").replace("&#39;", "'")
    assert "has a date but no time" in error_beside(page, "starts_at")
    assert "whole number of seats" in error_beside(page, "capacity")
    assert "full http:// or https:// address" in error_beside(page, "join_url")
    assert "kind must be webinar, workshop, training, dialogue" in error_beside(page, "kind")
    # What was typed is kept, in a box that can show it.
    assert 'type="text" value="2025-07-07"' in page
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0
    assert audit_log() == []


def test_an_event_that_ends_before_it_starts_is_refused_beside_the_end(admin):
    response = post(admin, "/admin/events/new", {**NEW_EVENT, "ends_at": "2025-07-07T13:00"})
    assert response.status_code == 422
    assert "is not after starts_at" in error_beside(response.get_data(as_text=True), "ends_at")


def test_a_wall_clock_time_the_zone_skips_is_refused_never_guessed(admin):
    response = post(admin, "/admin/events/new", {
        **NEW_EVENT, "timezone": "Europe/Berlin", "starts_at": "2026-03-29T02:30",
        "ends_at": "2026-03-29T04:00"})
    assert response.status_code == 422
    assert "does not exist in Europe/Berlin" in error_beside(response.get_data(as_text=True),
                                                             "starts_at")


def test_the_slug_new_is_reserved_in_the_console_as_in_the_importer(admin, runner, tmp_path):
    response = post(admin, "/admin/events/new", {**NEW_EVENT, "slug": "new"})
    assert response.status_code == 422
    assert "slug new is reserved" in error_beside(response.get_data(as_text=True), "slug")

    path = tmp_path / "programme.csv"
    path.write_text("slug,title,starts_at,ends_at\nnew,New,2025-07-07T14:00,2025-07-07T15:00\n")
    result = runner.invoke(args=["import-programme", str(path)])
    assert result.exit_code != 0 and "slug new is reserved" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0


def test_a_slug_another_event_has_is_refused(admin):
    make_event(slug="heat-plans")
    response = post(admin, "/admin/events/new", NEW_EVENT)
    assert response.status_code == 422
    assert "already has the slug heat-plans" in error_beside(response.get_data(as_text=True),
                                                             "slug")
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 1


def test_the_new_event_form_starts_in_the_organisers_zone(admin, organiser):
    organiser.timezone = "America/Sao_Paulo"
    db.session.commit()
    page = admin.get("/admin/events/new").get_data(as_text=True)
    assert 'name="timezone" type="text" value="America/Sao_Paulo"' in page


# --- editing -----------------------------------------------------------------------------------


def test_the_edit_form_holds_the_stored_values_with_times_in_the_events_zone(admin):
    event = make_event(capacity=30, location="Online")
    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    local = event.starts_at.astimezone(ZONE_BERLIN).strftime("%Y-%m-%dT%H:%M")
    assert f'name="starts_at" type="datetime-local" value="{local}"' in page
    assert 'name="timezone" type="text" value="Europe/Berlin"' in page
    assert 'name="capacity" type="text" value="30"' in page
    assert '<option value="exchange" selected>' in page


def test_saving_the_form_as_it_stands_changes_nothing_and_tells_nobody(admin, booked):
    response = post(admin, f"/admin/events/{booked.slug}", form_of(booked))

    assert response.status_code == 303
    assert messages() == []
    assert audit_log() == []
    assert reload(booked).updated_at == NOW
    assert "Nothing was changed" in admin.get(f"/admin/events/{booked.slug}").get_data(
        as_text=True)


def test_a_time_that_happens_twice_is_shown_with_its_offset_and_saves_unchanged(admin):
    # 02:30 on the night Berlin's clocks go back, the second time round (CET, +01:00).
    event = make_event(starts_at=datetime(2025, 10, 26, 1, 30, tzinfo=UTC))
    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    assert 'name="starts_at" type="text" value="2025-10-26T02:30+01:00"' in page

    response = post(admin, f"/admin/events/{event.slug}",
                    form_of(event, starts_at="2025-10-26T02:30+01:00"))
    assert response.status_code == 303
    assert reload(event).starts_at == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert audit_log() == []


def test_rescheduling_sends_every_registrant_the_update_and_is_audited(admin, booked):
    old_start = booked.starts_at
    response = post(admin, f"/admin/events/{booked.slug}",
                    form_of(booked, starts_at="2025-07-21T16:00", ends_at="2025-07-21T17:00"))

    assert response.status_code == 303
    event = reload(booked)
    assert event.starts_at == datetime(2025, 7, 21, 14, 0, tzinfo=UTC)
    updates = messages(kind="update")
    # Seat holders get a new invite (REQUEST), the waiting list a plain notice: as the importer.
    assert sorted((m.recipient, m.ical_method) for m in updates) == [
        ("first@example.org", "REQUEST"), ("second@example.org", "REQUEST"),
        ("waiting@example.org", None)]
    assert all(m.detail["old_starts_at"] == old_start.isoformat() for m in updates)
    assert event.ical_sequence == 1
    assert audit_log() == [("event changed", booked.slug,
                            {"fields": ["ends_at", "starts_at"], "notified": 3,
                             "promoted": 0})]
    page = admin.get(f"/admin/events/{booked.slug}").get_data(as_text=True)
    assert "3 registrants will be told by email." in page


def test_moving_an_event_into_the_past_is_refused_with_the_services_words(admin, booked):
    response = post(admin, f"/admin/events/{booked.slug}",
                    form_of(booked, starts_at="2025-06-19T10:00", ends_at="2025-06-19T11:00"))

    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "can&#39;t be moved into the past" in error_beside(page, "starts_at")
    assert reload(booked).starts_at == NOW + timedelta(days=30)
    assert messages() == [] and audit_log() == []


def test_cancelling_without_the_confirmation_changes_nothing_and_says_so(admin, booked):
    response = post(admin, f"/admin/events/{booked.slug}", form_of(booked, status="cancelled"))

    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "tick the box to confirm" in error_beside(page, "confirm_cancel")
    assert "Nothing was changed" in error_beside(page, "confirm_cancel")
    assert "notify its 3 registrants" in page
    assert reload(booked).status == "scheduled"
    assert messages() == [] and audit_log() == []


def test_cancelling_with_the_confirmation_notifies_every_registrant_and_is_audited(admin,
                                                                                  booked):
    response = post(admin, f"/admin/events/{booked.slug}",
                    form_of(booked, status="cancelled", confirm_cancel="y"))

    assert response.status_code == 303
    assert reload(booked).status == "cancelled"
    assert sorted((m.recipient, m.ical_method) for m in messages(kind="cancellation")) == [
        ("first@example.org", "CANCEL"), ("second@example.org", "CANCEL"),
        ("waiting@example.org", None)]
    assert audit_log() == [("event cancelled", booked.slug,
                            {"fields": ["status"], "notified": 3, "promoted": 0})]


def test_a_cancelled_event_cant_be_scheduled_again(admin):
    event = make_event(status="cancelled")
    response = post(admin, f"/admin/events/{event.slug}", form_of(event, status="scheduled"))
    assert response.status_code == 409
    assert "can&#39;t be scheduled again" in error_beside(response.get_data(as_text=True),
                                                          "status")
    assert reload(event).status == "cancelled"


def test_capacity_below_the_seats_taken_is_refused_unless_the_attendees_are_kept(admin,
                                                                                booked):
    refused = post(admin, f"/admin/events/{booked.slug}", form_of(booked, capacity="1"))

    assert refused.status_code == 422
    assert "capacity 1 is below the 2 seats already taken" in error_beside(
        refused.get_data(as_text=True), "capacity")
    assert reload(booked).capacity == 2

    kept = post(admin, f"/admin/events/{booked.slug}",
                form_of(booked, capacity="1", keep_attendees="y"))

    assert kept.status_code == 303
    event = reload(booked)
    assert (event.capacity, event.confirmed_count) == (1, 2)
    statuses = db.session.scalars(sa.select(Registration.status).order_by(Registration.id))
    assert list(statuses) == ["confirmed", "confirmed", "waitlisted"]
    assert messages() == []
    assert audit_log()[0][2]["fields"] == ["capacity"]


def test_more_seats_promote_the_waiting_list(admin, booked):
    response = post(admin, f"/admin/events/{booked.slug}", form_of(booked, capacity="5"))

    assert response.status_code == 303
    [promotion] = messages(kind="promotion")
    assert promotion.recipient == "waiting@example.org"
    assert reload(booked).confirmed_count == 3
    assert audit_log()[0][2] == {"fields": ["capacity"], "notified": 0, "promoted": 1}


def test_the_recording_link_plans_one_follow_up_per_seat_holder(admin, booked):
    response = post(admin, f"/admin/events/{booked.slug}",
                    form_of(booked, recording_url="https://video.example.org/r/1"))

    assert response.status_code == 303
    follow_ups = messages(kind="follow_up")
    assert sorted(m.recipient for m in follow_ups) == ["first@example.org",
                                                       "second@example.org"]
    assert all(m.due_at == booked.ends_at for m in follow_ups)


def test_a_title_change_updates_the_seat_holders_only(admin, booked):
    response = post(admin, f"/admin/events/{booked.slug}", form_of(booked, title="New title"))
    assert response.status_code == 303
    assert sorted(m.recipient for m in messages(kind="update")) == [
        "first@example.org", "second@example.org"]


def test_changing_the_slug_moves_the_event_but_not_onto_another(admin, booked):
    make_event(slug="taken")
    refused = post(admin, f"/admin/events/{booked.slug}", form_of(booked, slug="taken"))
    assert refused.status_code == 422
    assert "Another event has the slug taken" in error_beside(refused.get_data(as_text=True),
                                                              "slug")

    moved = post(admin, f"/admin/events/{booked.slug}", form_of(booked, slug="finance-basics"))
    assert moved.status_code == 303
    assert moved.headers["Location"].endswith("/admin/events/finance-basics")
    assert reload(booked).slug == "finance-basics"
    assert admin.get("/admin/events/climate-finance-101").status_code == 404


def test_an_edit_with_a_bad_field_changes_nothing_at_all(admin, booked):
    response = post(admin, f"/admin/events/{booked.slug}",
                    form_of(booked, title="Changed", join_url="not a link"))
    assert response.status_code == 422
    assert reload(booked).title == "Climate finance 101"
    assert messages() == [] and audit_log() == []


# --- bad requests ------------------------------------------------------------------------------


def test_an_unknown_event_answers_the_404_page(admin):
    response = admin.get("/admin/events/no-such-event")
    assert response.status_code == 404
    assert "No event has the slug" in response.get_data(as_text=True)
    for path in ("/admin/events/a%00b", "/admin/events/" + "x" * 300):
        assert admin.get(path).status_code == 404, path
    token = page_csrf(admin, "/admin/")
    for path in ("/admin/events/no-such-event", "/admin/events/no-such-event/retry"):
        assert admin.post(path, data={**NEW_EVENT, "csrf_token": token}).status_code == 404


def test_a_post_without_the_csrf_token_answers_400_and_changes_nothing(admin, booked):
    failed = make_message(db.session.scalars(sa.select(Registration)).first(), "failed")
    db.session.commit()
    for path, data in (
        ("/admin/events/new", NEW_EVENT),
        (f"/admin/events/{booked.slug}", form_of(booked, status="cancelled",
                                                  confirm_cancel="y")),
        (f"/admin/events/{booked.slug}/retry", {}),
    ):
        assert admin.post(path, data=data).status_code == 400, path
    assert reload(booked).status == "scheduled"
    assert db.session.get(Message, failed.id).status == "failed"
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 1
    assert audit_log() == []


# --- attendees and emails ----------------------------------------------------------------------


def test_the_event_page_lists_attendees_and_the_waiting_list_and_links_the_exports(admin,
                                                                                 booked):
    make_registration(booked, email="left@example.org", name="Left Early",
                      status="cancelled", cancelled_at=NOW)
    db.session.commit()
    page = admin.get(f"/admin/events/{booked.slug}").get_data(as_text=True)

    attendees = page[page.index('id="attendees"'):page.index('id="waiting"')]
    assert "Ben Okafor" in attendees and "second@example.org" in attendees
    assert "Nigeria" in attendees and "City of Yokohama" in attendees
    assert "Fri 20 Jun 2025, 09:00" in attendees  # registered, in the organiser's zone (UTC)
    waiting = page[page.index('id="waiting"'):page.index('id="messages"')]
    assert "waiting@example.org" in waiting and "first@example.org" not in waiting
    assert "left@example.org" in waiting and "1 cancelled" in waiting
    assert f'href="/admin/events/{booked.slug}/attendees.csv"' in page
    assert f'href="/admin/events/{booked.slug}/attendees.xlsx"' in page


def test_the_timeline_shows_sent_scheduled_failed_and_skipped_emails(admin, booked):
    first, second, waiting = db.session.scalars(
        sa.select(Registration).order_by(Registration.id)).all()
    sent_at = NOW - timedelta(hours=2)
    for registration in (first, second):
        make_message(registration, "sent", due_at=sent_at, sent_at=sent_at)
    week_before = booked.starts_at - timedelta(days=7)
    for registration in (first, second):  # the week's reminder, written as it fell due
        make_message(registration, "pending", kind="reminder", due_at=week_before,
                     slot=f"604800s@{booked.starts_at.isoformat()}")
    make_message(second, "failed", kind="update", attempts=1, last_attempt_at=NOW,
                 last_reply="550 5.1.1 mailbox unavailable")
    make_message(waiting, "skipped", kind="reminder", skip_reason="not confirmed")
    make_message(first, "skipped", kind="reminder", skip_reason="superseded")
    make_message(second, "skipped", kind="reminder", skip_reason="superseded")
    db.session.commit()

    page = admin.get(f"/admin/events/{booked.slug}").get_data(as_text=True)
    timeline = page[page.index('class="timeline"'):page.index('id="failed"')]
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r"<tr class=.*?</tr>", timeline, re.S)]
    assert rows == [
        "Fri 20 Jun 2025, 07:00 Coordinated Universal Time sent confirmation 2 people",
        "Sun 13 Jul 2025, 09:00 Coordinated Universal Time scheduled reminder 2 people",
        # Those not yet written, as the planner will write them.
        "Sat 19 Jul 2025, 09:00 Coordinated Universal Time scheduled reminder 2 people",
        "Sun 20 Jul 2025, 08:00 Coordinated Universal Time scheduled reminder 2 people",
    ]
    failed = page[page.index('id="failed"'):page.index("<h3>Skipped")]
    assert "second@example.org" in failed and "550 5.1.1 mailbox unavailable" in failed
    assert "Retry the 1 failed email still in time" in failed
    assert "<li>superseded: 2</li>" in page and "<li>not confirmed: 1</li>" in page


def test_retry_sends_failed_emails_still_in_time_again_and_says_which_are_too_late(admin,
                                                                                 booked):
    first, second, _ = db.session.scalars(
        sa.select(Registration).order_by(Registration.id)).all()
    in_time = make_message(first, "failed", kind="update", attempts=3,
                           last_reply="550 no", due_at=NOW - timedelta(hours=1))
    too_late = make_message(second, "failed", kind="reminder", attempts=1,
                            expires_at=NOW - timedelta(minutes=1))
    db.session.commit()

    response = post(admin, f"/admin/events/{booked.slug}/retry", {},
                    token_from=f"/admin/events/{booked.slug}")

    assert response.status_code == 303
    db.session.expire_all()
    retried = db.session.get(Message, in_time.id)
    assert (retried.status, retried.due_at, retried.attempts, retried.last_reply) == (
        "pending", NOW, 3, "550 no")
    assert db.session.get(Message, too_late.id).status == "failed"
    assert audit_log() == [("retry", booked.slug, {"messages": 1, "too_late": 1})]
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 failed message will be sent again shortly." in page
    assert "1 is past its window" in page


def test_retry_with_nothing_in_time_changes_nothing_and_says_so(admin, booked):
    first = db.session.scalars(sa.select(Registration)).first()
    late = make_message(first, "failed", expires_at=NOW - timedelta(minutes=1))
    db.session.commit()

    response = post(admin, f"/admin/events/{booked.slug}/retry", {},
                    token_from=f"/admin/events/{booked.slug}")

    assert response.status_code == 409
    assert "Nothing was retried: 1 is past its window" in response.get_data(as_text=True)
    assert db.session.get(Message, late.id).status == "failed"
    assert audit_log() == []


# --- pages -------------------------------------------------------------------------------------


def test_console_pages_carry_no_inline_script_or_style(admin, booked):
    first = db.session.scalars(sa.select(Registration)).first()
    make_message(first, "failed", last_reply="550 no")
    db.session.commit()
    for path in ("/admin/", "/admin/events/new", f"/admin/events/{booked.slug}",
                 "/admin/programme"):
        response = admin.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert "style=" not in page and "<style" not in page, path
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page)), path
        assert "onclick" not in page and "javascript:" not in page, path
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
