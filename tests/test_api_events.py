"""The programme as data: GET /api/v1/events and /api/v1/events/{slug}, their fields, filters
and caching."""

from datetime import timedelta

import pytest

from extensions import db
from tests.conftest import NOW, make_event, make_registration

FIELDS = {"slug", "title", "kind", "pillar", "language", "description", "starts_at", "ends_at",
          "timezone", "capacity", "seats_left", "status", "page_url", "ics_url",
          "recording_url"}


def test_an_event_has_the_documented_fields_in_utc_and_absolute_urls(client):
    event = make_event(capacity=30)
    make_registration(event)
    event.confirmed_count = 1
    db.session.commit()
    response = client.get("/api/v1/events/climate-finance-101")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == FIELDS
    assert body["starts_at"] == "2025-07-20T09:00:00Z"
    assert body["ends_at"] == "2025-07-20T10:30:00Z"
    assert (body["capacity"], body["seats_left"], body["status"]) == (30, 29, "scheduled")
    assert body["page_url"] == "http://forum.example.org/events/climate-finance-101"
    assert body["ics_url"] == "http://forum.example.org/events/climate-finance-101.ics"
    assert (body["kind"], body["pillar"], body["language"], body["timezone"]) == (
        "webinar", "exchange", "en", "Europe/Berlin")


def test_no_answer_ever_carries_the_join_link(client):
    make_event(join_url="https://meet.example.org/j/secret-room")
    for path in ("/api/v1/events", "/api/v1/events/climate-finance-101"):
        assert "secret-room" not in client.get(path).get_data(as_text=True)


def test_seats_left_is_null_for_a_session_without_a_cap(client):
    make_event(capacity=None)
    assert client.get("/api/v1/events/climate-finance-101").get_json()["seats_left"] is None


def test_the_recording_shows_only_once_the_session_has_ended(app, client):
    event = make_event(recording_url="https://video.example.org/rec/1")
    assert client.get("/api/v1/events/climate-finance-101").get_json()["recording_url"] is None
    app.config["CLOCK"] = lambda: event.ends_at + timedelta(minutes=1)
    body = client.get("/api/v1/events/climate-finance-101").get_json()
    assert (body["status"], body["recording_url"]) == ("ended", "https://video.example.org/rec/1")


def test_a_cancelled_session_says_so(client):
    make_event(status="cancelled")
    assert client.get("/api/v1/events/climate-finance-101").get_json()["status"] == "cancelled"


def _slugs(client, query=""):
    response = client.get("/api/v1/events" + query)
    assert response.status_code == 200, response.get_json()
    return [event["slug"] for event in response.get_json()["events"]]


@pytest.fixture
def programme():
    make_event(slug="late-ja-workshop", kind="workshop", pillar="reflect", language="ja",
               starts_at=NOW + timedelta(days=60))
    make_event(slug="early-webinar", starts_at=NOW + timedelta(days=10))
    make_event(slug="past-training", kind="training", pillar=None,
               starts_at=NOW - timedelta(days=10))


def test_the_list_is_soonest_first_past_sessions_included(client, programme):
    assert _slugs(client) == ["past-training", "early-webinar", "late-ja-workshop"]


@pytest.mark.parametrize(("query", "slugs"), [
    ("?kind=workshop", ["late-ja-workshop"]),
    ("?pillar=exchange", ["early-webinar"]),
    ("?language=ja", ["late-ja-workshop"]),
    ("?from=2025-06-20T09:00:00Z", ["early-webinar", "late-ja-workshop"]),
    ("?to=2025-07-01", ["past-training", "early-webinar"]),
    ("?from=2025-06-21T00:00:00%2B09:00&to=2025-08-01T00:00:00Z&kind=webinar",
     ["early-webinar"]),
])
def test_filters(client, programme, query, slugs):
    assert _slugs(client, query) == slugs


@pytest.mark.parametrize(("query", "field"), [
    ("?kind=party", "kind"), ("?language=fr", "language"), ("?from=yesterday", "from"),
    ("?to=0001-01-01T00:00:00%2B01:00", "to"),
])
def test_a_filter_that_cant_be_read_is_a_422_naming_it(client, programme, query, field):
    response = client.get("/api/v1/events" + query)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [error["field"] for error in response.get_json()["errors"]] == [field]


def test_answers_are_public_cacheable_and_open_to_every_site(client):
    make_event()
    for path in ("/api/v1/events", "/api/v1/events/climate-finance-101"):
        response = client.get(path, headers={"Origin": "https://anywhere.example"})
        assert response.headers["Cache-Control"] == "public, max-age=60"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "Set-Cookie" not in response.headers
        etag = response.headers["ETag"]
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""


def test_the_etag_changes_when_a_seat_is_taken(client):
    event = make_event(capacity=5)
    etag = client.get("/api/v1/events/climate-finance-101").headers["ETag"]
    event.confirmed_count = 1
    db.session.commit()
    response = client.get("/api/v1/events/climate-finance-101", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.get_json()["seats_left"] == 4


def test_an_unknown_session_is_a_404_problem(client):
    response = client.get("/api/v1/events/no-such-session")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404
    assert "no-such-session" not in response.get_data(as_text=True)
