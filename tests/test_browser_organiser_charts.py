"""The console's charts in Chromium, under the real Content-Security-Policy: drawn, nothing
blocked (a blocked style or script is reported on the console), no axe-core violation, no
sideways scrolling on a phone. One server and one browser for the module, on both databases."""

import pytest

from tests.browser import (
    axe_violations,
    browser,  # noqa: F401  (fixture)
    describe_violations,
    new_page,
    site,  # noqa: F401  (fixture)
)
from tests.conftest import ORGANISER_EMAIL, ORGANISER_PASSWORD


def signed_in(browser, site, width):  # noqa: F811
    """A console page of this width, signed in; every console message it logs, collected."""
    page = new_page(browser, width)
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(f"{site.url}/admin/login")
    page.fill("#email", ORGANISER_EMAIL)
    page.fill("#password", ORGANISER_PASSWORD)
    with page.expect_navigation():
        page.click("form[method=post] button[type=submit]")
    return page, messages


@pytest.mark.parametrize("width", [1280, 375])
def test_charts_draw_under_the_csp_with_no_violation(site, browser, width):  # noqa: F811
    page, messages = signed_in(browser, site, width)
    try:
        for path, drawn in (("/admin/", 2), (f"/admin/events/{site.full_slug}", 3)):
            page.goto(site.url + path)
            charts = page.locator("section.charts svg[role=img]")
            assert charts.count() == drawn, path
            # Drawn at the column's width, and not an empty box.
            box = charts.first.bounding_box()
            assert 300 <= box["width"] <= width and box["height"] > 100, (path, box)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
            violations = axe_violations(page)
            assert not violations, describe_violations(violations, f"{path} at {width} px")
        blocked = [text for text in messages if "Content Security Policy" in text]
        assert not blocked, blocked
    finally:
        page.context.close()
