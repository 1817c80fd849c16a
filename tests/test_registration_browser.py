"""The sign-up form as people send it: Debian's Chromium, driven by Playwright, against the app
under gunicorn, on SQLite and on PostgreSQL."""

import shutil

import pytest
import sqlalchemy as sa

from extensions import db
from registration.models import Registration
from tests.conftest import ATTENDEE
from tests.test_registration_race import (
    create_event,
    server,  # noqa: F401  (the gunicorn fixture)
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not shutil.which("chromium"):
    pytest.skip("Chromium is not installed: `apt-get install chromium fonts-noto-cjk` runs the "
                "browser tests", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (root has no sandbox)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def fill_and_send(page, email):
    page.fill("#name", ATTENDEE["name"])
    page.fill("#email", email)
    page.fill("#organisation", ATTENDEE["organisation"])
    page.check(f"input[name=affiliation][value={ATTENDEE['affiliation']}]")
    page.select_option("#country", ATTENDEE["country"])
    page.check("input[name=consent]")
    page.click("form[method=post] button[type=submit]")


def test_a_browser_sends_a_sharp_s_domain_as_typed_and_it_is_stored_in_idna_2008(
        server, app, browser):  # noqa: F811
    # Chromium rewrites the domain of an <input type=email> with IDNA 2003 rules before sending
    # (faß.de becomes fass.de, another domain): the form must not leave that to the browser.
    _, slug = create_event()
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/events/{slug}")
        fill_and_send(page, "anna@faß.de")
        page.wait_for_url(f"**/events/{slug}/registered")
    finally:
        page.close()
    db.session.remove()
    stored = db.session.execute(sa.select(Registration.email, Registration.email_key)).all()
    assert [tuple(row) for row in stored] == [("anna@xn--fa-hia.de", "anna@xn--fa-hia.de")]
