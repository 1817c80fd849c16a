"""Signing up through the API: the form's rules, limits and outbox, the same 202 for a first
and a repeat sign-up, and errors as problem details in the request's language."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from registration.models import Registration
from tests.conftest import ATTENDEE, make_event

SIGN_UP = "/api/v1/events/climate-finance-101/registrations"
BODY = {**ATTENDEE, "consent": True}


def registrations():
    return db.session.scalars(sa.select(Registration).order_by(Registration.id)).all()


def confirmations():
    return db.session.scalars(
        sa.select(Message).where(Message.kind == "confirmation").order_by(Message.id)).all()


def test_a_sign_up_is_accepted_stored_and_its_confirmation_queued(client):
    make_event()
    response = client.post(SIGN_UP, json=BODY)
    assert response.status_code == 202
    assert response.get_json() == {"status": "accepted", "email": "aiko.tanaka@example.org",
                                   "events": ["climate-finance-101"]}
    [registration] = registrations()
    assert (registration.name, registration.timezone, registration.status) == (
        "Aiko Tanaka", "Asia/Tokyo", "confirmed")
    assert registration.consent_version == "2025-06"
    [message] = confirmations()
    assert message.registration_id == registration.id


def test_a_repeat_answers_exactly_the_same_and_stores_nothing_new(client):
    make_event()
    first = client.post(SIGN_UP, json=BODY)
    again = client.post(SIGN_UP, json=BODY)
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    assert len(registrations()) == 1
    # The confirmation is sent again, as for a repeat on the form, within its allowance.
    for _ in range(3):
        client.post(SIGN_UP, json=BODY)
    assert len(confirmations()) == 3


def test_the_address_is_answered_as_sent(client):
    make_event()
    response = client.post(SIGN_UP, json={**BODY, "email": " Aiko.Tanaka@Example.ORG "})
    assert response.get_json()["email"] == " Aiko.Tanaka@Example.ORG "
    assert registrations()[0].email == "Aiko.Tanaka@example.org"


def test_a_full_session_puts_the_sign_up_on_the_waiting_list_with_the_same_answer(client):
    make_event(capacity=0)
    response = client.post(SIGN_UP, json=BODY)
    assert response.status_code == 202
    assert registrations()[0].status == "waitlisted"


def test_the_emails_language_defaults_to_the_requests(client):
    make_event()
    body = {key: value for key, value in BODY.items() if key != "language"}
    client.post(SIGN_UP, json=body, headers={"Accept-Language": "ja-JP,ja;q=0.9"})
    assert registrations()[0].language == "ja"


def test_a_filled_honeypot_answers_the_same_and_stores_nothing(client):
    make_event()
    response = client.post(SIGN_UP, json={**BODY, "website": "http://spam.example"})
    assert response.status_code == 202
    assert response.get_json()["status"] == "accepted"
    assert registrations() == [] and confirmations() == []


@pytest.mark.parametrize("language", ["en", "ja"])
def test_invalid_fields_are_a_422_in_the_requests_language_without_the_values(client,
                                                                               language):
    make_event()
    body = {**BODY, "name": "", "email": "secret-address-at-example.org", "country": "XX-SECRET",
            "timezone": "Mars/Olympus", "consent": False}
    response = client.post(SIGN_UP, json=body, headers={"Accept-Language": language})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert {"type", "title", "status", "detail", "errors"} <= set(problem)
    assert problem["status"] == 422
    assert [error["field"] for error in problem["errors"]] == [
        "name", "email", "country", "timezone", "consent"]
    messages = {error["field"]: error["message"] for error in problem["errors"]}
    expected = {"en": "Enter your full name", "ja": "氏名を入力してください"}[language]
    assert messages["name"] == expected
    text = response.get_data(as_text=True)
    for value in ("secret-address", "XX-SECRET", "Mars/Olympus"):
        assert value not in text
    assert registrations() == []


@pytest.mark.parametrize(("field", "value"), [
    ("name", 42), ("email", ["a@example.org"]), ("consent", "yes"), ("country", {"code": "JP"}),
])
def test_a_value_of_the_wrong_json_type_is_an_error_of_its_field(client, field, value):
    make_event()
    response = client.post(SIGN_UP, json={**BODY, field: value})
    assert response.status_code == 422
    assert [error["field"] for error in response.get_json()["errors"]] == [field]
    assert registrations() == []


def test_consent_must_be_true(client):
    make_event()
    body = {key: value for key, value in BODY.items() if key != "consent"}
    response = client.post(SIGN_UP, json=body)
    assert [error["field"] for error in response.get_json()["errors"]] == ["consent"]


def test_several_sessions_at_once_one_registration_each(client):
    make_event()
    make_event(slug="second-session")
    response = client.post("/api/v1/registrations",
                           json={**BODY, "events": ["climate-finance-101", "second-session",
                                                    "climate-finance-101"]})
    assert response.status_code == 202
    assert response.get_json()["events"] == ["climate-finance-101", "second-session"]
    assert sorted(r.event.slug for r in registrations()) == [
        "climate-finance-101", "second-session"]


@pytest.mark.parametrize("events", [None, [], "climate-finance-101", [1], ["x"] * 21])
def test_several_needs_a_list_of_slugs(client, events):
    make_event()
    response = client.post("/api/v1/registrations", json={**BODY, "events": events})
    assert response.status_code == 422
    assert [error["field"] for error in response.get_json()["errors"]] == ["events"]


def test_several_with_an_unknown_session_is_a_404_and_stores_nothing(client):
    make_event()
    response = client.post("/api/v1/registrations",
                           json={**BODY, "events": ["climate-finance-101", "nope"]})
    assert response.status_code == 404
    assert registrations() == []


def test_an_unknown_session_is_a_404(client):
    response = client.post("/api/v1/events/nope/registrations", json=BODY)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", [SIGN_UP, "/api/v1/registrations"])
def test_an_ended_or_cancelled_session_is_a_410(app, client, path):
    event = make_event(status="cancelled")
    body = {**BODY, "events": ["climate-finance-101"]}
    response = client.post(path, json=body)
    assert response.status_code == 410
    assert "was cancelled" in response.get_json()["detail"]
    event.status = "scheduled"
    db.session.commit()
    app.config["CLOCK"] = lambda: event.ends_at + timedelta(seconds=1)
    assert client.post(path, json=body).status_code == 410
    assert registrations() == []


def test_a_lone_surrogate_is_an_error_of_its_field_not_a_server_error(client):
    make_event()
    body = '{"name": "Aiko \\ud800", "email": "aiko@example.org", "consent": true}'
    response = client.post(SIGN_UP, data=body, content_type="application/json")
    assert response.status_code == 422
    assert "name" in [error["field"] for error in response.get_json()["errors"]]
    assert registrations() == []


@pytest.mark.parametrize("slug", ["bad\u0000slug", "\ud800", "x" * 81])
def test_a_slug_no_session_can_have_is_a_404(client, slug):
    make_event()
    response = client.post("/api/v1/registrations", json={**BODY, "events": [slug]})
    assert response.status_code == 404


def test_the_address_limit_takes_any_json_string(app_with):
    with app_with(RATELIMIT_ENABLED="true") as app:
        make_event()
        body = '{"email": "\\udc00@example.org"}'
        response = app.test_client().post(SIGN_UP, data=body, content_type="application/json")
        assert response.status_code == 422


def test_errors_come_in_the_order_of_the_page_whatever_their_kind(client):
    make_event()
    response = client.post(SIGN_UP, json={**BODY, "consent": "yes", "country": "XX", "name": 42})
    assert [error["field"] for error in response.get_json()["errors"]] == [
        "name", "country", "consent"]


def test_a_filled_trap_does_not_hide_what_is_wrong_with_the_body(client):
    make_event()
    response = client.post(SIGN_UP, json={**BODY, "website": "http://spam.example",
                                          "affiliation": 7})
    assert response.status_code == 422
    assert registrations() == []


def test_an_address_longer_than_other_fields_is_taken_up_to_the_announced_limit(client):
    # 227 characters: within email's own limits and the 320 the form and the API announce,
    # beyond the 200 of a name.
    address = "a" * 60 + "@" + ("b" * 60 + ".") * 2 + "c" * 40 + ".org"
    assert len(address) == 227
    make_event()
    response = client.post(SIGN_UP, json={**BODY, "email": address})
    assert response.status_code == 202, response.get_json()
    assert [registration.email for registration in registrations()] == [address]
