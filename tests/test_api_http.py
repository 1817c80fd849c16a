"""The API's HTTP rules: CORS (who may post, the preflight), no cookies and no credentials,
JSON only, body size, rate limits, and problem details for every error under /api."""

import pytest
import sqlalchemy as sa

from extensions import db
from registration.models import Registration
from tests.conftest import ATTENDEE, make_event, sign_up

SIGN_UP = "/api/v1/events/climate-finance-101/registrations"
BODY = {**ATTENDEE, "consent": True}
SITE = "https://www.city-network.example"


@pytest.fixture
def app(app_with):
    with app_with(CORS_ORIGINS=f"{SITE}, http://localhost:8080") as app:
        yield app


def stored() -> int:
    return len(db.session.scalars(sa.select(Registration)).all())


def test_a_listed_origin_may_post_and_reads_the_answer(client):
    make_event()
    response = client.post(SIGN_UP, json=BODY, headers={"Origin": SITE})
    assert response.status_code == 202
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Set-Cookie" not in response.headers


def test_a_listed_origin_reads_a_422_too(client):
    make_event()
    response = client.post(SIGN_UP, json={}, headers={"Origin": SITE})
    assert response.status_code == 422
    assert response.headers["Access-Control-Allow-Origin"] == SITE


def test_a_server_without_origin_may_post(client):
    make_event()
    assert client.post(SIGN_UP, json=BODY).status_code == 202


@pytest.mark.parametrize("origin", ["https://evil.example", "http://www.city-network.example",
                                    SITE + ":8443", "null"])
def test_any_other_origin_is_a_403_problem_and_nothing_is_stored(client, origin):
    make_event()
    response = client.post(SIGN_UP, json=BODY, headers={"Origin": origin})
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert stored() == 0


def test_the_preflight_of_a_listed_origin_is_answered(client):
    make_event()
    response = client.options(SIGN_UP, headers={
        "Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, accept-language"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, Accept-Language"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_the_preflight_of_another_origin_allows_nothing(client):
    response = client.options(SIGN_UP, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_no_answer_sets_a_cookie_even_with_a_language_chosen(client):
    make_event()
    for response in (
        client.get("/api/v1/form?lang=ja"),
        client.get("/api/v1/events?lang=ja"),
        client.post(SIGN_UP + "?lang=ja", json=BODY, headers={"Origin": SITE}),
        client.post(SIGN_UP + "?lang=ja", json={}),
        client.get("/api/v1/nothing-here?lang=ja"),
        client.get("/api/v1/docs?lang=ja"),  # a page of ours, with the language switch
        client.get("/api/v1/openapi.json?lang=ja"),
    ):
        assert "Set-Cookie" not in response.headers, response.request.path
    # The pages still keep the choice.
    assert "Set-Cookie" in client.get("/?lang=ja").headers


def test_the_security_headers_stay(client):
    response = client.get("/api/v1/events")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("data", "content_type"), [
    ("name=Aiko", "application/x-www-form-urlencoded"), ('{"name": "Aiko"}', "text/plain"),
])
def test_anything_but_json_is_a_415(client, data, content_type):
    make_event()
    response = client.post(SIGN_UP, data=data, content_type=content_type)
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"
    assert stored() == 0


@pytest.mark.parametrize("data", ["[1, 2]", "not json", '"text"'])
def test_json_that_is_not_an_object_is_a_400(client, data):
    make_event()
    response = client.post(SIGN_UP, data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_a_body_over_the_limit_is_a_413(client):
    make_event()
    response = client.post(SIGN_UP, json={**BODY, "name": "x" * 70_000})
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert stored() == 0


def test_a_method_the_address_does_not_take_is_a_405_problem(client):
    response = client.delete("/api/v1/events")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_an_unknown_address_under_api_is_a_404_problem_but_pages_keep_html(client):
    response = client.get("/api/v1/nothing-here", headers={"Accept-Language": "ja"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["title"] == "見つかりません"
    page = client.get("/nothing-here")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_the_rate_limits_are_the_forms_with_a_retry_after(app_with):
    with app_with(RATELIMIT_ENABLED="true", RATELIMIT_SIGNUP_PER_EMAIL="2 per hour") as app:
        client = app.test_client()
        make_event()
        # The form and the API count one address together.
        first = client.post(SIGN_UP, json=BODY)
        form = sign_up(client, "climate-finance-101")
        limited = client.post(SIGN_UP, json=BODY)
        assert (first.status_code, form.status_code, limited.status_code) == (202, 303, 429)
        assert limited.mimetype == "application/problem+json"
        assert int(limited.headers["Retry-After"]) > 0
        assert client.post(SIGN_UP, json={**BODY, "email": "other@example.org"}).status_code == 202


def test_an_unexpected_error_is_a_500_problem_on_api_and_an_html_page_elsewhere(app_with,
                                                                              monkeypatch):
    from api import events
    from registration import views

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    with app_with(TESTING=False) as app:
        make_event()
        monkeypatch.setattr(events, "describe", broken)
        monkeypatch.setattr(views, "render_template", broken)
        client = app.test_client()
        response = client.get("/api/v1/events/climate-finance-101")
        assert response.status_code == 500
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 500
        page = client.get("/")
        assert page.status_code == 500 and page.mimetype == "text/html"


def test_a_database_outage_is_a_503_problem(client, monkeypatch):
    from registration import services

    def down(slug):
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(services, "find_event", down)
    response = client.get("/api/v1/events/climate-finance-101")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["title"] == "Service unavailable"
