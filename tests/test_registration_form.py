"""The sign-up form as people meet it: GOV.UK's question pattern (title, error summary, each
field's message tied to its control, values kept), its choices in the page language, the time
zone, the privacy notice it links to, and the event page's calendar offer."""

import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from extensions import db
from registration.models import AFFILIATIONS, Registration
from tests.conftest import csrf_token, form_data, make_event, sign_up


class Tags(HTMLParser):
    """Every start tag of a page in order, as (tag, attributes), and the elements by id."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def by_id(self, element_id: str) -> tuple[str, dict]:
        [found] = [tag for tag in self.tags if tag[1].get("id") == element_id]
        return found


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


def stored() -> list:
    return db.session.scalars(sa.select(Registration)).all()


def post(client, slug, headers=None, **overrides):
    data = form_data(csrf_token=csrf_token(client, slug), **overrides)
    return client.post(f"/events/{slug}/register", data=data, headers=headers or {})


def test_a_page_with_errors_says_so_first_in_its_title(client):
    event = make_event()
    assert title(client.get(f"/events/{event.slug}").get_data(as_text=True)).startswith(
        "Climate finance 101")
    response = post(client, event.slug, name="")
    assert response.status_code == 422
    assert title(response.get_data(as_text=True)).startswith("Error: Climate finance 101")


def test_a_japanese_page_with_errors_says_so_in_japanese(client):
    event = make_event()
    response = post(client, event.slug, headers={"Accept-Language": "ja"}, name="", email="x")
    html = response.get_data(as_text=True)
    assert title(html).startswith("エラー: Climate finance 101")
    assert "問題があります" in html
    assert "氏名を入力してください" in html
    assert "メールアドレスには @ を入れてください" in html


def test_the_error_summary_lists_each_problem_in_page_order_linking_to_its_field(client):
    event = make_event()
    response = post(client, event.slug, name="", email="not-an-address", affiliation="",
                    timezone="Mars/Base", consent="")
    html = response.get_data(as_text=True)
    tags = Tags(html)
    summary = [attrs for tag, attrs in tags.tags if "data-error-summary" in attrs]
    assert summary and summary[0]["role"] == "alert" and summary[0]["tabindex"] == "-1"
    assert html.index("data-error-summary") < html.index("<h1")
    assert "There is a problem" in html
    links = re.findall(r'<li><a href="#([a-z_]+)">', html)
    assert links == ["name", "email", "affiliation", "timezone", "consent"]
    for field in links:
        # The link lands on a control of that field, which is marked invalid; the control (or
        # for radios their fieldset, as GOV.UK does) names the message.
        tag, attrs = tags.by_id(field)
        assert tag in ("input", "select") and attrs["aria-invalid"] == "true"
        if attrs.get("type") == "radio":
            [attrs] = [a for t, a in tags.tags if t == "fieldset"]
        assert f"{field}-error" in attrs["aria-describedby"].split()
        tags.by_id(f"{field}-error")
    # The message sits between the label and the control.
    assert html.index('for="name"') < html.index('id="name-error"') < html.index('id="name"')
    # Values are kept; a valid field is not marked.
    assert 'value="City of Yokohama"' in html
    assert "aria-invalid" not in str(tags.by_id("organisation")[1])
    assert '<option value="JP" selected>' in html


def test_a_hint_and_a_message_both_describe_their_control(client):
    event = make_event()
    html = post(client, event.slug, timezone="Mars/Base").get_data(as_text=True)
    _, attrs = Tags(html).by_id("timezone")
    assert attrs["aria-describedby"].split() == ["timezone-hint", "timezone-error"]


def test_the_type_of_organisation_is_a_group_of_radios(client):
    event = make_event()
    html = client.get(f"/events/{event.slug}").get_data(as_text=True)
    radios = [attrs for tag, attrs in Tags(html).tags
              if tag == "input" and attrs.get("name") == "affiliation"]
    assert [attrs["value"] for attrs in radios] == list(AFFILIATIONS)
    assert all(attrs["type"] == "radio" for attrs in radios)
    assert radios[0]["id"] == "affiliation"
    group = html[html.index('<fieldset class="radios"'):html.index("</fieldset>")]
    assert "<legend>Type of organisation</legend>" in group
    for attrs in radios:
        assert f'<label for="{attrs["id"]}">' in group
    # A choice is kept when the page comes back with another problem.
    html = post(client, event.slug, name="", affiliation="academia").get_data(as_text=True)
    [checked] = [attrs["value"] for tag, attrs in Tags(html).tags
                 if attrs.get("name") == "affiliation" and "checked" in attrs]
    assert checked == "academia"


def test_optional_fields_say_so_and_the_privacy_link_says_it_opens_a_new_tab(client):
    event = make_event()
    html = client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert '<label for="organisation">Organisation (optional)</label>' in html
    assert "(optional)" not in html.replace("Organisation (optional)", "")
    link = re.search(r'<a href="/privacy"[^>]*>([^<]*)</a>', html[html.index('id="consent"'):])
    assert 'target="_blank"' in link.group(0) and "opens in a new tab" in link.group(1)


def test_the_time_zone_is_a_visible_choice_prefilled_with_the_sessions(client):
    event = make_event()
    html = client.get(f"/events/{event.slug}").get_data(as_text=True)
    tag, attrs = Tags(html).by_id("timezone")
    assert tag == "select" and attrs["name"] == "timezone" and "data-prefill" in attrs
    assert '<option value="Europe/Berlin" selected>Berlin — Central European Time</option>' in html
    assert '<option value="Asia/Tokyo">Tokyo — Japan Standard Time</option>' in html
    assert "Your emails show the session’s times in this time zone." in html
    assert "data-browser-zone" not in html and "data-zone-label" not in html
    assert '<script src="/static/js/form.js" defer></script>' in html
    # After an answer the person's choice stands: the script no longer picks one.
    html = post(client, event.slug, name="", timezone="Asia/Tokyo").get_data(as_text=True)
    assert '<option value="Asia/Tokyo" selected>' in html
    assert "data-prefill" not in html


def test_an_old_spelling_of_a_zone_selects_its_place(client):
    event = make_event()
    html = client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert '<option value="Asia/Kolkata" data-aliases="Asia/Calcutta">' in html
    html = post(client, event.slug, name="", timezone="Asia/Calcutta").get_data(as_text=True)
    assert '<option value="Asia/Kolkata" selected data-aliases="Asia/Calcutta">' in html
    assert post(client, event.slug, timezone="Asia/Calcutta").status_code == 303
    assert [registration.timezone for registration in stored()] == ["Asia/Kolkata"]


@pytest.mark.parametrize("zone", ["US/Eastern", "EST5EDT", "Etc/GMT+5"])
def test_a_zone_the_list_does_not_offer_is_refused(client, zone):
    # A real zone, but not one the list shows: coming back with another error, it could not
    # be shown as chosen, and the person would silently get the first zone of the list.
    event = make_event()
    assert post(client, event.slug, timezone=zone).status_code == 422
    assert stored() == []


def test_an_unknown_time_zone_is_refused_with_nothing_stored(client):
    event = make_event()
    response = post(client, event.slug, timezone="Europe/Atlantis")
    assert response.status_code == 422
    assert "Select the time zone for your emails from the list" in response.get_data(
        as_text=True)
    assert stored() == []


def test_choices_are_in_the_page_language_and_stored_as_codes(client):
    event = make_event()
    html = client.get(f"/events/{event.slug}?lang=ja").get_data(as_text=True)
    assert '<option value="JP">日本</option>' in html
    assert '<option value="DE">ドイツ</option>' in html
    assert '<option value="Asia/Tokyo">東京 — 日本標準時</option>' in html
    assert '<option value="Europe/Berlin" selected>ベルリン — 中央ヨーロッパ時間</option>' in html
    assert '<label for="affiliation">地方自治体</label>' in html
    # Emails start in the language the page is read in, whatever the session's.
    assert '<option value="ja" selected>日本語</option>' in html
    english = client.get(f"/events/{event.slug}?lang=en").get_data(as_text=True)
    assert '<option value="en" selected>English</option>' in english
    assert "ウェビナー" in html and "交流" in html
    assert sign_up(client, event.slug, country="DE", affiliation="ngo").status_code == 303
    [registration] = stored()
    assert (registration.country, registration.affiliation) == ("DE", "ngo")


def test_the_programme_is_in_the_page_language(client):
    make_event()
    html = client.get("/?lang=ja").get_data(as_text=True)
    assert "<h2>2025年7月</h2>" in html
    assert '<option value="webinar" >ウェビナー</option>' in html or "ウェビナー</option>" in html
    assert "英語で開催" in html


def test_the_language_switch_of_a_page_with_errors_leads_to_the_event(client):
    event = make_event()
    html = post(client, event.slug, name="").get_data(as_text=True)
    assert f'href="/events/{event.slug}?lang=ja"' in html


@pytest.fixture
def operated(app_with):
    with app_with(SERVICE_OPERATOR="Secretariat of the City Climate Network",
                  ORGANISER_EMAIL="privacy@cities.example.org", RETENTION_DAYS="45") as app:
        yield app.test_client()


@pytest.mark.parametrize("language, words", [
    ("en", ("run by Secretariat of the City Climate Network",
            "deleted 45 days after the session ends")),
    ("ja", ("Secretariat of the City Climate Network が運営しています", "終了から 45 日後に削除")),
])
def test_the_privacy_notice_names_the_operator_the_contact_and_the_retention(
        operated, language, words):
    html = operated.get(f"/privacy?lang={language}").get_data(as_text=True)
    for text in words:
        assert text in html
    assert 'href="mailto:privacy@cities.example.org">privacy@cities.example.org</a>' in html


def test_the_event_page_offers_the_programme_subscription_and_the_sessions_file(app_with):
    with app_with(BASE_URL="https://forum.example.org") as app:
        slug = make_event().slug
        html = app.test_client().get(f"/events/{slug}").get_data(as_text=True)
    # The subscription keeps the page's language (a calendar app sends no cookie).
    assert 'href="webcal://forum.example.org/programme.ics?lang=en"' in html
    assert ('href="https://calendar.google.com/calendar/r?cid='
            'webcal%3A%2F%2Fforum.example.org%2Fprogramme.ics%3Flang%3Den"') in html
    assert f'href="/events/{slug}.ics"' in html
    assert "your own invite" in html
    for other in ("outlook", "office.com"):
        assert other not in html.lower()
