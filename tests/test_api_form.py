"""GET /api/v1/form: the sign-up form described for the embed, in the page's words."""

import re

from tests.conftest import ATTENDEE, make_event

BODY = {**ATTENDEE, "consent": True}
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def describe(client, language):
    response = client.get(f"/api/v1/form?lang={language}")
    assert response.status_code == 200
    return response.get_json()


def test_the_fields_are_the_pages_in_its_order(client):
    form = describe(client, "en")
    assert [field["name"] for field in form["fields"]] == [
        "name", "email", "organisation", "affiliation", "country", "timezone", "language",
        "consent"]
    assert form["honeypot"] == "website"
    consent = form["fields"][-1]
    assert consent["required"] is True
    assert consent["link"]["url"] == "http://forum.example.org/privacy"


def test_every_sentence_is_translated_into_japanese(client):
    english, japanese = describe(client, "en"), describe(client, "ja")
    assert english["texts"].keys() == japanese["texts"].keys()
    for key in ("error_prefix", "join_waiting_list", "no_sessions", "no_sessions_filtered",
                "not_found", "too_many"):
        assert english["texts"][key], key
    untranslated = [key for key, text in japanese["texts"].items()
                    if not JAPANESE.search(text)]
    assert untranslated == []
    assert japanese["texts"]["error_prefix"] == "エラー:"  # the page's own word
    assert english["texts"]["join_waiting_list"] == "Join the waiting list"


def test_an_empty_choice_of_sessions_gets_the_programme_pages_words(client):
    make_event()
    response = client.post("/api/v1/registrations", json={**BODY, "events": []},
                           headers={"Accept-Language": "en"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": "events", "message": "Choose at least one session from the programme."}]
    # The other fields' errors come with it, as the programme page shows them all at once.
    both = client.post("/api/v1/registrations", json={**BODY, "events": [], "email": "x"})
    assert [error["field"] for error in both.get_json()["errors"]] == ["events", "email"]
    too_many = client.post("/api/v1/registrations",
                           json={**BODY, "events": [f"s{n}" for n in range(21)]})
    assert too_many.get_json()["errors"][0]["message"].startswith("Choose at most 20 sessions")
