"""The HTML emails as a phone shows them: Debian's Chromium at 375 px, driven by Playwright."""

import pytest

from tests.browser import browser  # noqa: F401  (fixture)
from tests.test_notifications_mail_language import JOIN, parsed_mail, parts, queued

PHONE = {"width": 375, "height": 740}


@pytest.mark.parametrize("reader, label", [("en", "Join the session"),
                                           ("ja", "セッションに参加する")])
def test_on_a_phone_the_join_button_is_big_clear_and_nothing_scrolls_sideways(
        app, browser, tmp_path, reader, label):  # noqa: F811
    description = "How cities fund climate action.\nBring your questions."
    message, now = queued("reminder", reader, description=description)
    _, html = parts(parsed_mail(app, message, now))
    page = browser.new_page(viewport=PHONE)
    try:
        page.set_content(html)
        page.screenshot(path=tmp_path / f"reminder-{reader}-375.png", full_page=True)
        button = page.get_by_role("link", name=label)
        box = button.bounding_box()
        # A target a thumb can hit, and white on dark blue (7.6:1).
        assert box["height"] >= 44 and box["width"] >= 120
        colours = button.evaluate(
            "a => [getComputedStyle(a).color, getComputedStyle(a.parentElement).backgroundColor]")
        assert colours == ["rgb(255, 255, 255)", "rgb(31, 79, 168)"]
        assert button.get_attribute("href") == JOIN
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate("document.documentElement.lang") == reader
        assert page.get_by_text("Bring your questions.").is_visible()
    finally:
        page.close()
