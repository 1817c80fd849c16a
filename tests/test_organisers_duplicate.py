"""Duplicating a session in the console: a copy of its details under a slug the organiser
chooses (checked as a new session's is), scheduled, with nobody registered, no recording and a
public UID of its own; audited; a bad slug creates nothing."""

import re

import pytest
import sqlalchemy as sa

from extensions import db
from organisers.models import AuditEntry
from registration.models import Event, Registration
from tests.conftest import make_event, make_registration, page_csrf

COPIED = ("title", "kind", "pillar", "starts_at", "ends_at", "timezone", "capacity", "language",
          "description", "location", "join_url")


@pytest.fixture
def source(admin):
    """A session with registrants, a recording link, and something in every copied field."""
    event = make_event(slug="heat-plans", title="Heat plans", kind="workshop", pillar="exchange",
                       timezone="Asia/Tokyo", capacity=30, language="ja",
                       location="Yokohama and online", description="Line one.\nLine two.",
                       recording_url="https://video.example.org/r/9")
    make_registration(event)
    event.confirmed_count = 1
    db.session.commit()
    return event


def duplicate(client, slug, new_slug, with_token=True):
    path = f"/admin/events/{slug}/duplicate"
    data = {"slug": new_slug}
    if with_token:
        data["csrf_token"] = page_csrf(client, path)
    return client.post(path, data=data)


def events() -> dict[str, Event]:
    db.session.expire_all()
    return {event.slug: event for event in db.session.scalars(sa.select(Event))}


def audit_log() -> list[tuple[str, str, dict | None]]:
    return [(e.action, e.target, e.detail)
            for e in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
            if e.action != "signed in"]


def test_the_event_page_offers_to_duplicate_it(admin, source):
    page = admin.get("/admin/events/heat-plans").get_data(as_text=True)
    assert 'href="/admin/events/heat-plans/duplicate">Duplicate</a>' in page


def test_the_form_is_prefilled_with_the_slug_and_copy(admin, source):
    response = admin.get("/admin/events/heat-plans/duplicate")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'<input id="slug" name="slug" type="text" value="heat-plans-copy"', page)
    assert 'name="csrf_token"' in page
    assert set(events()) == {"heat-plans"}


def test_duplicating_copies_the_details_but_no_people_recording_or_uid(admin, source):
    response = duplicate(admin, "heat-plans", "heat-plans-autumn")

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/events/heat-plans-autumn")
    stored = events()
    copy, original = stored["heat-plans-autumn"], stored["heat-plans"]
    assert {name: getattr(copy, name) for name in COPIED} == {
        name: getattr(original, name) for name in COPIED}
    assert copy.status == "scheduled" and copy.recording_url is None
    assert copy.public_uid != original.public_uid
    assert copy.confirmed_count == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)
                             .where(Registration.event_id == copy.id)) == 0
    assert audit_log() == [("event duplicated", "heat-plans-autumn", {"from": "heat-plans"})]
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Event heat-plans-autumn created as a copy of heat-plans." in page


def test_a_cancelled_session_is_copied_as_a_scheduled_one(admin):
    make_event(slug="called-off", status="cancelled")

    assert duplicate(admin, "called-off", "called-off-again").status_code == 303
    assert events()["called-off-again"].status == "scheduled"


@pytest.mark.parametrize(("new_slug", "words"), [
    ("Heat Plans", "must be lowercase letters, digits and single hyphens"),
    ("", "slug is empty; it is required"),
    ("new", "slug new is reserved; choose another"),
    ("heat-plans", "An event already has the slug heat-plans; choose another."),
])
def test_a_bad_or_taken_slug_is_refused_beside_the_field_and_creates_nothing(admin, source,
                                                                           new_slug, words):
    response = duplicate(admin, "heat-plans", new_slug)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    error = re.search(r'<p class="field-error" id="slug-error">(.*?)</p>', page, re.S)
    assert error and words in error.group(1)
    assert 'aria-invalid="true"' in page
    assert set(events()) == {"heat-plans"}
    assert audit_log() == []


def test_duplicating_needs_the_csrf_token_and_a_signed_in_organiser(app, admin, source):
    assert duplicate(admin, "heat-plans", "heat-plans-copy", with_token=False).status_code == 400
    anonymous = app.test_client()
    response = anonymous.post("/admin/events/heat-plans/duplicate",
                              data={"slug": "heat-plans-copy"})
    assert response.status_code in (303, 400)
    assert anonymous.get("/admin/events/heat-plans/duplicate").status_code == 303
    assert set(events()) == {"heat-plans"}
    assert audit_log() == []


def test_an_unknown_session_cant_be_duplicated(admin):
    assert admin.get("/admin/events/nothing-here/duplicate").status_code == 404
