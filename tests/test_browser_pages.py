"""Every attendee page in Chromium, in both languages: no axe-core violation (WCAG 2.2 AA tags)
on a desktop and a phone, nothing forcing sideways scrolling at 320 px (the console's dashboard
too), one h1 and a title of its own. One server and one browser for the module, on SQLite and
on PostgreSQL."""

import pytest

from tests.browser import (
    LANGUAGES,
    PAGES,
    WIDTHS,
    axe_violations,
    browser,  # noqa: F401  (fixture)
    describe_violations,
    heading_and_title_problems,
    new_page,
    open_page,
    site,  # noqa: F401  (fixture)
    tab,  # noqa: F401  (fixture)
    widest,
)
from tests.conftest import ORGANISER_EMAIL, ORGANISER_PASSWORD

NARROW = 320


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", PAGES)
def test_no_axe_violations(site, tab, name, lang, width):  # noqa: F811
    page = tab(width)
    open_page(page, site, name, lang)
    violations = axe_violations(page)
    assert not violations, describe_violations(
        violations, f"{name} ({lang}, {width} px) at {page.url}")


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", PAGES)
def test_nothing_scrolls_sideways_at_320_px(site, tab, name, lang):  # noqa: F811
    page = tab(NARROW)
    open_page(page, site, name, lang)
    assert scroll_width(page) <= NARROW, (name, lang, scroll_width(page), widest(page))


def test_the_console_dashboard_does_not_scroll_sideways_at_320_px(site, browser):  # noqa: F811
    page = new_page(browser, NARROW)
    try:
        page.goto(f"{site.url}/admin/login")
        page.fill("#email", ORGANISER_EMAIL)
        page.fill("#password", ORGANISER_PASSWORD)
        with page.expect_navigation():
            page.click("form[method=post] button[type=submit]")
        assert page.url.rstrip("/").endswith("/admin"), page.url
        assert scroll_width(page) <= NARROW, (scroll_width(page), widest(page))
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_has_one_h1_and_a_title_of_its_own(site, tab, lang):  # noqa: F811
    page = tab(WIDTHS[0])
    problems = heading_and_title_problems(
        PAGES, lambda name: (open_page(page, site, name, lang), page)[1])
    assert not problems, "\n".join(problems)


def test_the_axe_check_finds_what_it_should(tab):  # noqa: F811
    # The harness itself: axe runs with the promised tags and reports rule, impact and target.
    page = tab(WIDTHS[1])
    page.set_content("<!doctype html><html><head><title>t</title></head><body><main>"
                     "<img src='data:,'><input id='x'></main></body></html>")
    violations = axe_violations(page)
    message = describe_violations(violations, "a made-up page")
    assert {"html-has-lang", "image-alt", "label"} <= {v["id"] for v in violations}, message
    assert "- image-alt (critical): " in message and " at img" in message, message
