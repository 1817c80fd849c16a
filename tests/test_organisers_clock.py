"""Times in the console: every page shows them in the signed-in organiser's own zone, with the
zone named, and a session's own time beside it where its clocks read otherwise."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from extensions import db
from organisers import auth
from tests.conftest import NOW, make_event, make_registration
from tests.test_organisers_dashboard import make_message, row_of
from tests.test_organisers_upload import HEADER, section, upload

# make_event()'s default: 09:00–10:30 UTC a month after NOW, a session held in Berlin (11:00).
KOLKATA_START = "Sunday 20 July 2025, 14:30–16:00 India Standard Time"
BERLIN_BESIDE = "(11:00–12:30 in Berlin)"


def text(html: str) -> str:
    """What a person reads: tags dropped, spaces run together."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


@pytest.fixture
def in_kolkata(organiser):
    organiser.timezone = "Asia/Kolkata"
    db.session.commit()
    return organiser


def test_the_dashboard_shows_a_session_in_the_organisers_zone_and_its_own_beside(admin,
                                                                                  in_kolkata):
    make_event()
    page = admin.get("/admin/").get_data(as_text=True)
    row = text(row_of(page, "climate-finance-101"))
    assert f"{KOLKATA_START} {BERLIN_BESIDE}" in row
    assert "09:00" not in row  # never the stored UTC time
    assert "Asia/Kolkata — India Standard Time" in text(page)


def test_the_event_page_shows_a_session_in_the_organisers_zone_and_its_own_beside(
        admin, in_kolkata):
    event = make_event()
    page = text(admin.get(f"/admin/events/{event.slug}").get_data(as_text=True))
    assert f"{KOLKATA_START} {BERLIN_BESIDE}" in page


def test_a_session_whose_clocks_read_as_the_organisers_gets_no_second_time(admin, organiser):
    organiser.timezone = "Europe/Paris"  # the same wall clock as Berlin
    db.session.commit()
    make_event()
    row = text(row_of(admin.get("/admin/").get_data(as_text=True), "climate-finance-101"))
    assert "Sunday 20 July 2025, 11:00–12:30 Central European Summer Time" in row
    assert " in Berlin" not in row


def test_a_session_on_another_day_where_it_is_held_names_that_day(admin, organiser):
    organiser.timezone = "America/Los_Angeles"
    db.session.commit()
    make_event(timezone="Asia/Tokyo", starts_at=datetime(2025, 7, 16, 20, 0, tzinfo=UTC))
    row = text(row_of(admin.get("/admin/").get_data(as_text=True), "climate-finance-101"))
    assert ("Wednesday 16 July 2025, 13:00–14:30 Pacific Daylight Time "
            "(Thursday 17 July 2025, 05:00–06:30 in Tokyo)") in row


def test_the_attendee_list_and_the_email_timeline_are_in_the_organisers_zone(admin,
                                                                           in_kolkata):
    event = make_event()
    registration = make_registration(event, registered_at=NOW)
    make_message(registration, "sent", due_at=NOW, sent_at=NOW + timedelta(minutes=2))
    make_message(registration, "failed", kind="update", attempts=1, last_attempt_at=NOW,
                 last_reply="550 no such user")
    db.session.commit()
    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    attendees = text(page[page.index('id="attendees"'):page.index('id="waiting"')])
    assert "Fri 20 Jun 2025, 14:30 India Standard Time" in attendees
    timeline = text(page[page.index('class="timeline"'):page.index('id="failed"')])
    assert "Fri 20 Jun 2025, 14:32 India Standard Time sent confirmation" in timeline
    failed = text(page[page.index('id="failed"'):page.index("<h3>Skipped")])
    assert "Fri 20 Jun 2025, 14:30 India Standard Time (attempt 1)" in failed
    assert "yes, until Sun 20 Jul 2025, 16:00 India Standard Time" in failed


def test_a_batch_sent_over_some_minutes_names_its_day_and_zone_once(admin, in_kolkata):
    event = make_event()
    for minutes, email in ((0, "a@example.org"), (25, "b@example.org")):
        registration = make_registration(event, email=email)
        make_message(registration, "sent", kind="reminder", due_at=NOW,
                     sent_at=NOW + timedelta(minutes=minutes))
    db.session.commit()
    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    timeline = text(page[page.index('class="timeline"'):page.index('id="failed"')])
    assert "Fri 20 Jun 2025, 14:30–14:55 India Standard Time sent reminder" in timeline


def test_the_audit_log_is_in_the_organisers_zone_to_the_second(admin, in_kolkata):
    auth.audit("event changed", "climate-finance-101", organiser=in_kolkata)
    db.session.commit()
    page = text(admin.get("/admin/audit").get_data(as_text=True))
    # NOW (09:00:00 UTC) is both the sign-in and the change.
    assert "Fri 20 Jun 2025, 14:30:00 India Standard Time" in page
    assert "09:00:00" not in page
    assert "Times are shown in your time zone, Asia/Kolkata — India Standard Time" in page


def test_the_attendance_page_shows_the_session_in_the_organisers_zone(admin, in_kolkata):
    event = make_event()
    page = text(admin.get(f"/admin/events/{event.slug}/attendance").get_data(as_text=True))
    assert f"{KOLKATA_START} {BERLIN_BESIDE}" in page


def test_the_upload_preview_shows_new_times_in_the_organisers_zone(admin, in_kolkata):
    data = f"{HEADER}\nheat,Heat plans,2025-07-21T10:00,2025-07-21T11:30,Asia/Tokyo,\n"
    response = upload(admin, data.encode())
    assert response.status_code == 200, response.get_data(as_text=True)
    created = text(section(response.get_data(as_text=True), "To create"))
    assert ("Monday 21 July 2025, 06:30–08:00 India Standard Time (10:00–11:30 in Tokyo)"
            in created)


def test_the_event_form_names_the_zone_its_times_are_read_in(admin, in_kolkata):
    event = make_event()
    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    hint = ("Wall-clock times in the session's time zone, chosen below: "
            "Europe/Berlin — Central European Time.")
    assert f'<p class="hint" id="times-hint">{hint}</p>' in page
    assert re.search(r'name="starts_at" [^>]*aria-describedby="times-hint"', page)
    new = admin.get("/admin/events/new").get_data(as_text=True)
    assert "chosen below: Asia/Kolkata — India Standard Time." in new
