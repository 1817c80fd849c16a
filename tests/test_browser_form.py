"""The sign-up form's script in Chromium against gunicorn: it offers the visitor's own time zone,
brings the error summary into view on a phone, and its links focus their field."""

import pytest

from tests.browser import (
    browser,  # noqa: F401  (fixture)
    site,  # noqa: F401  (fixture)
)


@pytest.mark.parametrize("visitor_zone, offered", [
    ("Asia/Tokyo", "Asia/Tokyo"),
    # Chromium still names India's zone by its old spelling; the list holds the current one.
    ("Asia/Calcutta", "Asia/Kolkata"),
    # A zone the list does not hold (a plain offset) leaves the session's own.
    ("Etc/GMT-3", "Europe/Berlin"),
])
def test_the_form_offers_the_visitors_time_zone(site, browser, visitor_zone,  # noqa: F811
                                                offered):
    context = browser.new_context(timezone_id=visitor_zone)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/events/{site.open_slug}")
        assert page.eval_on_selector("#timezone", "select => select.value") == offered
    finally:
        context.close()


def test_errors_are_in_view_on_a_phone_and_their_links_focus_the_field(
        site, browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="ja-JP",
                                  timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.goto(f"{site.url}/events/{site.open_slug}?lang=ja")
        page.select_option("#timezone", "America/Sao_Paulo")
        page.fill("#email", "anna@exa mple.org")
        page.click("form[method=post] button[type=submit]")
        page.wait_for_selector("[data-error-summary]")
        assert page.title().startswith("エラー: ")
        assert page.evaluate("document.activeElement.matches('[data-error-summary]')")
        top, bottom = page.evaluate("""() => {
            const box = document.querySelector('[data-error-summary]').getBoundingClientRect();
            return [box.top, box.bottom]; }""")
        assert 0 <= top and bottom <= 667
        # The person's choice stands after the answer; the script does not replace it.
        assert page.eval_on_selector("#timezone", "select => select.value") == "America/Sao_Paulo"
        page.click("[data-error-summary] a[href='#affiliation']")
        assert page.evaluate("document.activeElement.id") == "affiliation"
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()
