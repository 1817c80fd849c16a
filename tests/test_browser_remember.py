"""'Remember my details on this device' in Chromium against gunicorn: the ticked box fills in
the next form, scripts can't read the cookie, "Forget me" works without a script, and the
event page with the box and the notice stays clean for axe on a phone, in both languages."""

import pytest

from tests.browser import (
    axe_violations,
    browser,  # noqa: F401  (fixture)
    describe_violations,
    fill_sign_up,
    new_page,
    site,  # noqa: F401  (fixture)
)

SEND = "form[action$='/register'] button[type=submit]"


def sign_up_remembered(page, site, lang):  # noqa: F811
    page.goto(site.at(f"/events/{site.open_slug}", lang))
    email = site.new_email()
    fill_sign_up(page, email)
    page.check("#remember")
    with page.expect_navigation():
        page.click(SEND)
    return email


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_next_form_is_filled_in_and_forget_me_clears_it_without_a_script(
        site, browser, lang):  # noqa: F811
    page = new_page(browser, 375, java_script_enabled=False)
    try:
        email = sign_up_remembered(page, site, lang)
        page.goto(site.at(f"/events/{site.open_slug}", lang))
        assert page.input_value("#email") == email
        assert page.input_value("#country") == "JP"
        assert not page.is_checked("#remember") and not page.is_checked("#consent")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        with page.expect_navigation():
            page.click("form.remembered button[type=submit]")
        assert page.url.startswith(f"{site.url}/events/{site.open_slug}")
        assert page.input_value("#email") == ""
        assert page.locator("form.remembered").count() == 0
    finally:
        page.context.close()


def test_scripts_cannot_read_the_cookie(site, browser):  # noqa: F811
    page = new_page(browser, 1280)
    try:
        sign_up_remembered(page, site, "en")
        page.goto(site.at(f"/events/{site.open_slug}", "en"))
        assert page.input_value("#name")  # remembered…
        assert "remember=" not in page.evaluate("document.cookie")  # …out of scripts' reach
        [cookie] = [c for c in page.context.cookies() if c["name"] == "remember"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_event_page_with_the_box_and_remembered_details_is_clean_for_axe_on_a_phone(
        site, browser, lang):  # noqa: F811
    page = new_page(browser, 375, locale="ja-JP" if lang == "ja" else "en-GB")
    try:
        page.goto(site.at(f"/events/{site.open_slug}", lang))
        assert page.locator("#remember").count() == 1
        violations = axe_violations(page)
        assert not violations, describe_violations(violations, f"the event page ({lang})")
        sign_up_remembered(page, site, lang)
        page.goto(site.at(f"/events/{site.open_slug}", lang))
        assert page.locator("form.remembered").count() == 1
        violations = axe_violations(page)
        assert not violations, describe_violations(
            violations, f"the event page with remembered details ({lang})")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        page.context.close()
