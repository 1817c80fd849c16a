"""The page language: ?lang= switches and is kept in a cookie, else Accept-Language, else
English; a manage page starts in the registrant's language; the console stays English."""

import re

import pytest

from registration import language, tokens
from tests.conftest import make_event, make_registration
from tests.servers import ROOT

HTML_LANG = re.compile(r'<html lang="([a-z]+)"')


def page_language(response) -> str:
    return HTML_LANG.search(response.get_data(as_text=True)).group(1)


def test_english_without_a_choice_or_a_preference(client):
    response = client.get("/")
    assert page_language(response) == "en"
    assert "Accept-Language" in response.vary


def test_accept_language_picks_japanese(client):
    response = client.get("/", headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"})
    assert page_language(response) == "ja"
    assert "プログラム" in response.get_data(as_text=True)


def test_lang_parameter_switches_and_the_cookie_keeps_it(client):
    response = client.get("/?lang=ja", headers={"Accept-Language": "en"})
    assert page_language(response) == "ja"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("lang=ja;") and "SameSite=Lax" in cookie
    assert page_language(client.get("/privacy", headers={"Accept-Language": "en"})) == "ja"
    assert page_language(client.get("/privacy?lang=en")) == "en"
    assert page_language(client.get("/privacy")) == "en"


def test_an_unknown_language_is_ignored(client):
    response = client.get("/?lang=xx")
    assert page_language(response) == "en"
    assert "Set-Cookie" not in response.headers or "lang=" not in response.headers["Set-Cookie"]


def test_the_switch_keeps_the_visitor_on_the_same_page_with_its_query(client):
    html = client.get("/?kind=webinar").get_data(as_text=True)
    assert 'href="/?kind=webinar&amp;lang=ja"' in html
    assert 'lang="ja" hreflang="ja">日本語</a>' in html


def test_a_manage_page_starts_in_the_registrants_language(app, client):
    registration = make_registration(make_event(), language="ja")
    path = f"/r/{tokens.manage_token(registration)}"
    app.extensions["sqlalchemy"].session.commit()
    assert page_language(client.get(path, headers={"Accept-Language": "en"})) == "ja"
    # A visitor who chose a language keeps it.
    assert page_language(client.get(f"{path}?lang=en")) == "en"
    assert page_language(client.get(path)) == "en"


def test_the_console_stays_english(client):
    response = client.get("/admin/login?lang=ja", headers={"Accept-Language": "ja"})
    assert page_language(response) == "en"
    assert "lang=" not in response.headers.get("Set-Cookie", "")


def test_error_pages_speak_the_page_language(client):
    response = client.get("/events/no-such-session", headers={"Accept-Language": "ja"})
    assert response.status_code == 404
    assert page_language(response) == "ja"
    assert "ページが見つかりません" in response.get_data(as_text=True)


@pytest.mark.parametrize("header, expected", [
    ("ja-JP,en-US;q=0.9,en;q=0.8", "ja"),
    ("ja-JP,en;q=0.9", "ja"),
    ("en-GB,ja;q=0.9", "en"),
    ("fr-FR,ja;q=0.5,en;q=0.4", "ja"),
    ("fr-FR,de;q=0.5", "en"),
    ("x" * 500, "en"),
])
def test_the_most_wanted_language_wins_whatever_its_region(client, header, expected):
    assert page_language(client.get("/", headers={"Accept-Language": header})) == expected


def test_the_cookie_is_secure_when_the_site_is(app_with):
    with app_with(BASE_URL="https://forum.example.org") as app:
        cookie = app.test_client().get("/?lang=ja").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_a_compiled_catalogue_is_required_for_each_language(tmp_path):
    assert language.missing_catalogues(ROOT) == []
    assert language.missing_catalogues(tmp_path) == ["ja"]


def test_the_switch_on_a_refused_post_leads_to_its_confirmation_page(app, client):
    registration = make_registration(make_event(), language="ja")
    path = f"/r/{tokens.manage_token(registration)}/cancel"
    app.extensions["sqlalchemy"].session.commit()
    html = client.post(path).get_data(as_text=True)  # no CSRF token: 400
    assert f'href="{path}?lang=ja"' in html
