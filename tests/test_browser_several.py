"""Choosing several sessions in Chromium, on a phone, in both languages, with and without
JavaScript: tick them on the programme (or on a session's page), drop one, sign up once, and
find each on the thank-you page and in the database. One server and one browser for the
module, on SQLite and on PostgreSQL."""

from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from extensions import db
from tests.browser import (
    LANGUAGES,
    browser,  # noqa: F401  (fixture)
    fill_sign_up,
    new_page,
    site,  # noqa: F401  (fixture)
)

PHONE = 375
VISITORS = {"en": {"locale": "en-GB", "timezone_id": "Europe/London"},
            "ja": {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}}
SUBMIT = "form[method=post] button[type=submit]"


def stored_slugs(app, email):
    """The slugs of the sessions this address is registered for."""
    with app.app_context():
        from registration.models import Event, Registration

        slugs = db.session.scalars(sa.select(Event.slug).join(Registration)
                                   .where(Registration.email_key == email)
                                   .order_by(Event.slug)).all()
        db.session.remove()
        db.engine.dispose()
    return list(slugs)


def chosen(page) -> list[str]:
    return parse_qs(urlparse(page.url).query).get("event", [])


@pytest.mark.parametrize("script", [True, False], ids=["javascript", "no-javascript"])
@pytest.mark.parametrize("lang", LANGUAGES)
def test_tick_three_on_the_programme_drop_one_and_sign_up_once(site, browser, lang,  # noqa: F811
                                                               script):
    page = new_page(browser, PHONE, java_script_enabled=script, **VISITORS[lang])
    try:
        page.goto(site.at("/", lang))
        for slug in (site.open_slug, site.full_slug, site.night_slug):
            page.check(f"input[name=event][value={slug}]")
        with page.expect_navigation():
            page.click("form.choose button[type=submit]")
        assert urlparse(page.url).path == "/signup"
        assert set(chosen(page)) == {site.open_slug, site.full_slug, site.night_slug}
        assert page.locator("main .chosen li.event").count() == 3

        full = page.locator("main .chosen li.event").filter(
            has=page.locator(f"a[href$='/events/{site.full_slug}']"))
        with page.expect_navigation():
            full.locator("a.drop").click()
        assert set(chosen(page)) == {site.open_slug, site.night_slug}
        assert page.locator("main .chosen li.event").count() == 2

        email = site.new_email()
        fill_sign_up(page, email)
        with page.expect_navigation() as navigation:
            page.click(SUBMIT)
        assert navigation.value.status == 200, page.url
        assert urlparse(page.url).path == "/signup/done"
        titles = page.locator("main li.event a").all_inner_texts()
        assert titles == ["Climate finance 101", "Night owls: heat action plans"], titles
        assert stored_slugs(site.app, email) == sorted([site.open_slug, site.night_slug])
    finally:
        page.context.close()


def test_a_session_page_adds_the_ones_ticked_below_it(site, browser):  # noqa: F811
    page = new_page(browser, PHONE, **VISITORS["ja"])
    try:
        page.goto(site.at(f"/events/{site.open_slug}", "ja"))
        page.check(f"#also-{site.night_slug}")
        with page.expect_navigation():
            page.click("section.also button[type=submit]")
        assert chosen(page) == [site.open_slug, site.night_slug]
        assert page.locator("html").get_attribute("lang") == "ja"
    finally:
        page.context.close()


def test_a_chosen_session_shows_its_time_where_the_visitor_is(site, browser):  # noqa: F811
    page = new_page(browser, PHONE, **VISITORS["ja"])
    try:
        page.goto(site.at(f"/signup?event={site.night_slug}", "ja"))
        page.wait_for_function(
            """t => [...document.querySelectorAll('main .chosen time[datetime]')]
                     .some(e => e.parentElement.innerText.includes(t))""", arg="10:00〜11:30")
        text = page.locator("main .chosen li.event").first.inner_text()
        assert "日本標準時" in text, text
    finally:
        page.context.close()
