"""What a visitor does in Chromium: signs up with the keyboard alone (the error summary reached
and used), sees a session's time where they are (Tokyo in Japanese, New York, no JavaScript),
switches language without losing the page, skips to the content, sees where the focus is, and
sends an address whose domain Chromium would rewrite. One server and one browser for the
module, on SQLite and on PostgreSQL."""

import re
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from extensions import db
from tests.browser import (
    PAGES,
    WIDTHS,
    browser,  # noqa: F401  (fixture)
    contrast,
    fill_sign_up,
    focus_path,
    focus_problems,
    focused,
    new_page,
    open_page,
    site,  # noqa: F401  (fixture)
    skip_link_problems,
    tab,  # noqa: F401  (fixture)
)
from tests.conftest import ATTENDEE

WIDE = WIDTHS[0]
SUBMIT = "form[method=post] button[type=submit]"


@pytest.fixture
def page(tab):  # noqa: F811
    page = tab(WIDE)
    # Each test starts from no page and no language chosen.
    page.context.clear_cookies()
    page.goto("about:blank")
    return page


def tab_to(page, selector: str, limit: int = 40) -> None:
    """Press Tab until the focus is on an element matching the selector."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page, selector):
            return
        seen.append(focus_path(page))
    raise AssertionError(f"Tab never reached {selector}; it went through {seen}")


def choose_by_keyboard(page, name: str, value: str) -> None:
    """Pick a value of a select (type-ahead on its label) or a radio group (Space on the first
    radio Tab reaches: any answer is a valid one)."""
    if page.locator(f"input[type=radio][name={name}]").count():
        tab_to(page, f"input[type=radio][name={name}]")
        page.keyboard.press("Space")
        return
    tab_to(page, f"select[name={name}]")
    label = page.evaluate("([n, v]) => document.querySelector(`select[name=${n}] "
                          "option[value='${v}']`).textContent.trim()", [name, value])
    page.keyboard.type(label)
    assert page.eval_on_selector(f"select[name={name}]", "e => e.value") == value


def press_and_wait(page, key: str):
    with page.expect_navigation() as navigation:
        page.keyboard.press(key)
    return navigation.value


def stored(app, email_key):
    with app.app_context():
        from registration.models import Registration

        rows = db.session.execute(sa.select(Registration.email, Registration.email_key)
                                  .where(Registration.email_key == email_key)).all()
        db.session.remove()
        db.engine.dispose()
    return [tuple(row) for row in rows]


def test_a_keyboard_alone_signs_up_through_the_error_summary(site, page):  # noqa: F811
    email = site.new_email()
    page.goto(site.at(f"/events/{site.open_slug}", "en"))
    tab_to(page, "#name")
    page.keyboard.type(ATTENDEE["name"])
    # The email address is left out.
    tab_to(page, "#organisation")
    page.keyboard.type(ATTENDEE["organisation"])
    choose_by_keyboard(page, "affiliation", ATTENDEE["affiliation"])
    choose_by_keyboard(page, "country", ATTENDEE["country"])
    tab_to(page, "input[name=consent]")
    page.keyboard.press("Space")
    tab_to(page, SUBMIT)
    assert press_and_wait(page, "Enter").status == 422

    assert page.title().startswith("Error: "), page.title()
    summary = "[role=alert]:has(a[href='#email'])"
    assert focused(page, f"{summary}, {summary} *"), (
        f"the error summary should have the focus, not {focus_path(page)}")
    tab_to(page, "a[href='#email']", limit=3)
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'email'",
                           timeout=2000)
    assert page.input_value("#name") == ATTENDEE["name"]  # values are kept
    page.keyboard.type(email)
    tab_to(page, SUBMIT)
    response = press_and_wait(page, "Enter")
    assert response.status == 200, page.url
    # The thank-you page, not the form again.
    assert not urlparse(page.url).path.endswith("/register"), page.url
    assert not page.locator("[aria-invalid=true]").count()
    assert stored(site.app, email) == [(email, email)]


def session_time(page) -> str:
    """The text around the session's first time on the page (the script may add a sibling)."""
    return page.locator("main time[datetime]").first.locator("xpath=..").inner_text()


def wait_for_time(page, text: str) -> str:
    page.wait_for_function(
        """t => { const e = document.querySelector('main time[datetime]');
                  return !!e && e.parentElement.innerText.includes(t) }""", arg=text)
    return session_time(page)


def test_tokyo_in_japanese_sees_the_berlin_night_session_at_ten(site, browser):  # noqa: F811
    page = new_page(browser, WIDE, locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        page.goto(site.at(f"/events/{site.night_slug}", "ja"))
        text = wait_for_time(page, "10:00〜11:30")
        assert "日本標準時" in text and "7月14日" in text, text
    finally:
        page.context.close()


def test_new_york_sees_the_berlin_night_session_the_evening_before(site, browser):  # noqa: F811
    page = new_page(browser, WIDE, locale="en-US", timezone_id="America/New_York")
    try:
        page.goto(site.at(f"/events/{site.night_slug}", "en"))
        text = wait_for_time(page, "21:00")
        assert re.search(r"\b13\b", text) and "22:30" in text, text
    finally:
        page.context.close()


def test_without_javascript_the_session_keeps_its_own_zone(site, browser):  # noqa: F811
    page = new_page(browser, WIDE, locale="ja-JP", timezone_id="Asia/Tokyo",
                    java_script_enabled=False)
    try:
        page.goto(site.at(f"/events/{site.night_slug}", "en"))
        text = session_time(page)
        assert "03:00" in text and "04:30" in text, text
        assert "Central European Summer Time" in text, text
    finally:
        page.context.close()


@pytest.mark.parametrize("name", ["event", "form-errors", "manage-seat", "my-sessions",
                                  "lost-link-errors"])
def test_the_language_switch_keeps_the_page(site, page, name):  # noqa: F811
    open_page(page, site, name, "en")
    path = urlparse(page.url).path
    with page.expect_navigation():
        page.get_by_role("link", name="日本語", exact=True).click()
    assert page.evaluate("document.documentElement.lang") == "ja"
    # A form with errors has no address of its own: the switch leads back to the form's page.
    expected = {"form-errors": f"/events/{site.open_slug}", "lost-link-errors": "/me"}.get(
        name, path)
    assert urlparse(page.url).path == expected, page.url


def test_the_skip_link_is_the_first_tab_stop_and_moves_to_main(site, page):  # noqa: F811
    # Not the forms with errors: their error summary takes the focus when it loads.
    problems = skip_link_problems(
        [name for name in PAGES if not name.endswith("errors")],
        lambda name: (open_page(page, site, name, "en"), page)[1])
    assert not problems, "\n".join(problems)


def test_the_focus_check_finds_a_faint_ring_and_a_missing_one(page):
    # The check itself, on a made-up page (inline styles are fine here: no CSP applies).
    page.set_content("<!doctype html><html lang='en'><body style='background:#fff'>"
                     "<a href='#a' id='faint' style='outline:2px solid #ccc'>a</a>"
                     "<button id='none' style='outline:none'>b</button>"
                     "<input id='fine' style='outline:3px solid #1d70b8'></body></html>")
    problems = focus_problems(page, "made-up")
    assert len(problems) == 2, problems
    assert "a#faint[href=#a]'s focus ring rgb(204, 204, 204) has 1.61:1" in problems[0]
    assert "button#none shows no outline or box-shadow" in problems[1]
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_control_shows_a_focus_ring_of_3_to_1(site, page, lang):  # noqa: F811
    problems = []
    for name in ("event", "form-errors", "manage-seat", "my-sessions", "lost-link-errors"):
        open_page(page, site, name, lang)
        problems += focus_problems(page, f"{name} ({lang})")
    assert not problems, "\n".join(problems)


def test_a_sharp_s_domain_is_sent_as_typed_and_stored_in_idna_2008(site, page):  # noqa: F811
    # Chromium rewrites the domain of an <input type=email> with IDNA 2003 rules before sending
    # (faß.de becomes fass.de, another domain): the form must not leave that to the browser.
    page.goto(site.at(f"/events/{site.open_slug}", "en"))
    fill_sign_up(page, "anna@faß.de")
    with page.expect_navigation():
        page.click(SUBMIT)
    assert stored(site.app, "anna@xn--fa-hia.de") == [("anna@xn--fa-hia.de", "anna@xn--fa-hia.de")]
    assert not stored(site.app, "anna@fass.de")
