"""The embeddable sign-up on another organisation's page, in Chromium: a host on a second origin
with a strict CSP embeds <forum-signup> and <forum-programme> in both languages, people sign up
through our API (the confirmation and its invite reach a real SMTP server), errors show as on
our own page, and nothing breaks the CSP, sets a cookie, fails axe or lets the host's CSS in.
One server, one host and one browser for the module, on SQLite and on PostgreSQL."""

import email
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
import sqlalchemy as sa

from extensions import db
from tests.browser import ATTENDEE, LANGUAGES, axe_violations, describe_violations, new_page
from tests.conftest import sending_through_smtp
from tests.embed_host import (
    FALLBACK,
    VISITORS,
    csp_violations,
    launch_blocking_third_party_cookies,
    rendered,
    start_embedding,
    watch,
)

ZONE_NAMES = {"en": "Greenwich Mean Time", "ja": "日本標準時"}
PHONE, NARROW = 375, 320


@pytest.fixture(scope="module")
def embedding(module_database_url, tmp_path_factory):
    embedding = start_embedding(module_database_url, tmp_path_factory.mktemp("embed"))
    yield embedding
    embedding.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_blocking_third_party_cookies(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def visit(browser, embedding):
    """open(lang, width=PHONE, **host page query) -> (page, problems); each page in a context of
    its own, closed after the test. `problems` collects console errors and CSP violations, and
    every Set-Cookie our origin answers with."""
    pages = []

    def open_page(lang, width=PHONE, script=True, **query):
        page = new_page(browser, width, java_script_enabled=script, **VISITORS[lang])
        problems = watch(page)
        page.on("response", lambda response: response.url.startswith(embedding.site.url)
                and "set-cookie" in response.headers
                and problems.append(f"Set-Cookie from {response.url}"))
        pages.append(page)
        page.goto(embedding.host.page(lang, **query))
        return page, problems

    yield open_page
    for page in pages:
        page.context.close()


def assert_clean(page, problems, where):
    """No CSP violation, console error, cookie (either origin) or axe violation."""
    assert csp_violations(page) == [], where
    assert problems == [], where
    assert page.context.cookies() == [], where
    violations = axe_violations(page)
    assert violations == [], describe_violations(violations, where)


def fill_widget(widget, email_address):
    """Fill the widget's form as a person would."""
    widget.locator("#name").fill(ATTENDEE["name"])
    widget.locator("#email").fill(email_address)
    widget.locator("#organisation").fill(ATTENDEE["organisation"])
    radio = widget.locator(f"input[name=affiliation][value={ATTENDEE['affiliation']}]")
    if radio.count():
        radio.check()
    else:
        widget.locator("select[name=affiliation]").select_option(ATTENDEE["affiliation"])
    widget.locator("#country").select_option(ATTENDEE["country"])
    widget.locator("#consent").check()


def our_page_words(browser, site, slug, lang, address=""):
    """The labels and hints of our own page's sign-up form, and its error messages when sent
    empty but for this address."""
    page = new_page(browser, PHONE, **VISITORS[lang])
    try:
        page.goto(site.at(f"/events/{slug}", lang))
        page.fill("#email", address)
        form = "main form[method=post]"
        labels = page.locator(f"{form} .field > label, {form} .field legend").all_inner_texts()
        hints = page.locator(f"{form} .field .hint").all_inner_texts()
        with page.expect_navigation():
            page.click("main form[method=post] button[type=submit]")
        errors = page.locator(".error-summary li").all_inner_texts()
    finally:
        page.context.close()
    return labels, hints, errors


def registered(app, email_address) -> list[tuple[str, str]]:
    """(slug, language for emails) of each registration of this address."""
    with app.app_context():
        from registration.models import Event, Registration

        rows = db.session.execute(sa.select(Event.slug, Registration.language)
                                  .join(Registration)
                                  .where(Registration.email_key == email_address)
                                  .order_by(Event.slug)).all()
        db.session.remove()
        db.engine.dispose()
    return [(slug, str(language)) for slug, language in rows]


def delivered_to(app, handler, email_address):
    """Run the dispatcher once as the worker would; the messages that reached this address."""
    from notifications.dispatcher import dispatch_due

    with app.app_context():
        dispatch_due(lambda: datetime.now(UTC))
        db.session.remove()
        db.engine.dispose()
    return [email.message_from_bytes(raw, policy=policy.default)
            for _, recipients, raw in handler.delivered if email_address in recipients]


def test_the_browser_blocks_third_party_cookies(embedding, browser):
    """The premise of the tests below: a cookie from another site than the page's is dropped
    (one from the page's own site is kept, so the check can see a cookie at all)."""
    port = embedding.host.origin.rsplit(":", 1)[1]
    kept = {}
    for page_site in ("127.0.0.1", "localhost"):
        page = new_page(browser, PHONE)
        try:
            page.goto(f"http://{page_site}:{port}/blank")
            page.evaluate("url => fetch(url, {credentials: 'include'}).then(r => r.text())",
                          f"http://localhost:{port}/cookie")
            kept[page_site] = [cookie["name"] for cookie in page.context.cookies()]
        finally:
            page.context.close()
    assert kept == {"127.0.0.1": [], "localhost": ["probe"]}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_visitor_signs_up_on_the_host_page_and_gets_the_invite(embedding, browser, visit,
                                                                lang):
    site = embedding.site
    page, problems = visit(lang, event=site.open_slug)
    widget = rendered(page)
    assert widget.locator("h2").inner_text() == "Climate finance 101"
    assert ZONE_NAMES[lang] in widget.locator("time").inner_text()
    # The fallback link is the host's content, no longer shown once the widget is there.
    assert not page.get_by_role("link", name=FALLBACK[lang]).is_visible()
    labels, hints, _ = our_page_words(browser, site, site.open_slug, lang)
    shown = widget.locator(".field > label, .field legend").all_inner_texts()
    assert [label for label in labels if label in shown] == labels, (labels, shown)
    # Every hint is our page's (which also has one for remembering details on the device,
    # something the embed does not do).
    shown_hints = widget.locator(".field .hint").all_inner_texts()
    assert len(shown_hints) >= 2 and set(shown_hints) <= set(hints), (hints, shown_hints)
    assert widget.locator(f"#language option[value={lang}]").evaluate("o => o.selected")
    assert_clean(page, problems, f"the {lang} sign-up")

    address = site.new_email()
    with sending_through_smtp(site.app) as handler:
        fill_widget(widget, address)
        widget.locator("button[type=submit]").click()
        outcome = widget.locator("[role=status]")
        outcome.locator("h3").wait_for()
        assert address in outcome.inner_text()
        assert page.evaluate("document.activeElement.shadowRoot.activeElement.matches"
                             "('[role=status]')")
        assert not widget.locator("form").is_visible()
        assert registered(site.app, address) == [(site.open_slug, lang)]
        messages = delivered_to(site.app, handler, address)
    assert len(messages) == 1, [m["Subject"] for m in messages]
    invite = next(part for part in messages[0].walk()
                  if part.get_content_type() == "text/calendar")
    assert invite.get_param("method") == "REQUEST"
    assert "Climate finance 101" in invite.get_content()
    assert_clean(page, problems, f"the {lang} sign-up, sent")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_errors_show_as_on_our_page(embedding, browser, visit, lang):
    site = embedding.site
    page, problems = visit(lang, event=site.open_slug)
    widget = rendered(page)
    widget.locator("#email").fill("not an address")
    widget.locator("button[type=submit]").click()
    summary = widget.locator(".error-summary")
    summary.wait_for()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement"
                         ".matches('.error-summary')")
    _, _, our_errors = our_page_words(browser, site, site.open_slug, lang, "not an address")
    listed = summary.locator("li").all_inner_texts()
    assert listed == our_errors
    email_error = widget.locator("#email-error")
    assert email_error.inner_text().endswith(listed[1])
    assert widget.locator("#email").get_attribute("aria-invalid") == "true"
    assert "email-error" in widget.locator("#email").get_attribute("aria-describedby")
    # The submitted value is kept in the field, never echoed by the API.
    assert widget.locator("#email").input_value() == "not an address"
    assert registered(site.app, "not an address") == []
    assert_clean(page, problems, f"the {lang} errors")
    summary.locator("a[href='#consent']").click()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.id") == "consent"

    fill_widget(widget, site.new_email())
    widget.locator("button[type=submit]").click()
    widget.locator("[role=status] h3").wait_for()
    assert widget.locator(".error-summary").count() == 0
    assert widget.locator("[aria-invalid]").count() == 0


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_programme_signs_up_for_several_sessions_at_once(embedding, visit, lang):
    site = embedding.site
    page, problems = visit(lang, programme="")
    widget = rendered(page, "forum-programme")
    titles = widget.locator("ul.sessions label strong").all_inner_texts()
    assert {"Climate finance 101", "Resilient ports", "Night owls: heat action plans"} <= set(
        titles)
    assert "Heat maps in practice" not in titles  # it has ended
    assert_clean(page, problems, f"the {lang} programme")
    address = site.new_email()
    widget.locator(f"input[name=events][value={site.open_slug}]").check()
    widget.locator(f"input[name=events][value={site.night_slug}]").check()
    fill_widget(widget, address)
    widget.locator("button[type=submit]").click()
    widget.locator("[role=status] h3").wait_for()
    assert registered(site.app, address) == sorted([(site.open_slug, lang),
                                                    (site.night_slug, lang)])
    assert_clean(page, problems, f"the {lang} programme, sent")


def test_the_programme_shows_only_the_sessions_in_the_language_asked(embedding, visit):
    page, _ = visit("ja", programme="en")
    widget = rendered(page, "forum-programme")
    languages = widget.locator("ul.sessions strong").evaluate_all("es => es.map(e => e.lang)")
    assert len(languages) >= 3 and set(languages) == {"en"}
    page, _ = visit("ja", programme="ja")  # every seeded session is in English
    widget = rendered(page, "forum-programme")
    assert widget.locator("ul.sessions li").count() == 0


def test_a_session_that_has_ended_says_so_and_offers_no_form(embedding, visit):
    page, problems = visit("en", event="heat-maps")
    widget = rendered(page)
    assert widget.locator("form").count() == 0
    assert widget.locator(".notice").inner_text()
    assert_clean(page, problems, "an ended session")


def test_a_cancelled_session_says_so_and_offers_no_form(embedding, visit):
    from registration.models import Event, EventStatus
    from tests.conftest import make_event

    app = embedding.site.app
    with app.app_context():
        make_event(slug="called-off", title="Called off", status=EventStatus.CANCELLED,
                   starts_at=datetime.now(UTC) + timedelta(days=20))
        assert db.session.scalar(sa.select(Event.status).where(Event.slug == "called-off")) \
            == EventStatus.CANCELLED
        db.session.remove()
        db.engine.dispose()
    page, problems = visit("ja", event="called-off")
    widget = rendered(page)
    assert widget.locator("h2").inner_text() == "Called off"
    assert widget.locator("form").count() == 0
    assert widget.locator(".notice").inner_text() == "中止"
    assert_clean(page, problems, "a cancelled session")


def test_a_session_not_in_the_programme_leaves_the_hosts_link(embedding, visit):
    page, _ = visit("en", event="no-such-session")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("link", name=FALLBACK["en"]).is_visible()
    assert page.locator("forum-signup").locator("form").count() == 0


def test_the_programme_asks_for_a_session_when_none_is_ticked(embedding, visit):
    page, problems = visit("ja", programme="")
    widget = rendered(page, "forum-programme")
    fill_widget(widget, embedding.site.new_email())
    widget.locator("button[type=submit]").click()
    summary = widget.locator(".error-summary")
    summary.wait_for()
    assert summary.locator("li").count() == 1
    summary.locator("a[href='#events']").click()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.value") \
        == widget.locator("input[name=events]").first.get_attribute("value")
    assert widget.locator("#events-error").is_visible()
    assert_clean(page, problems, "the programme, nothing ticked")


def test_every_control_shows_a_focus_ring(embedding, visit):
    page, _ = visit("en", width=1280, event=embedding.site.open_slug)
    widget = rendered(page)
    controls = widget.locator("input:not([tabindex='-1']), select, button, a").count()
    seen = []
    for _ in range(controls):
        page.keyboard.press("Tab")
        ring = page.evaluate("""() => { const e = document.activeElement.shadowRoot
            && document.activeElement.shadowRoot.activeElement;
            if (!e) return null; const s = getComputedStyle(e);
            return [e.id || e.name || e.tagName, s.outlineStyle, s.outlineWidth, s.boxShadow]; }""")
        if ring is None:
            continue
        seen.append(ring[0])
        assert ring[1] == "solid" and ring[2] == "3px" and "255, 221, 0" in ring[3], ring
    assert {"name", "email", "country", "consent"} <= set(seen), seen


def test_the_host_stylesheet_changes_nothing_inside(embedding, visit):
    styles = "e => { const s = getComputedStyle(e); return [s.color, s.fontSize, s.fontFamily]; }"
    looks = {}
    for hostile in ("0", "1"):
        page, problems = visit("en", event=embedding.site.open_slug, hostile=hostile)
        widget = rendered(page)
        looks[hostile] = [widget.locator(selector).first.evaluate(styles)
                          for selector in ("h2", "label", "button", "#name")]
        assert csp_violations(page) == []
    assert looks["1"] == looks["0"]
    assert "rgb(255, 0, 0)" not in str(looks["1"])
    # Nor does the widget change the host page: its heading looks the same without it.
    heading = {}
    for query in ({"event": embedding.site.open_slug}, {}):
        page, _ = visit("en", width=1280, **query)
        if query:
            rendered(page)
        heading[bool(query)] = page.locator("h1").evaluate(styles)
    assert heading[True] == heading[False]


def test_without_javascript_the_host_shows_the_link_to_our_page(embedding, visit):
    site = embedding.site
    page, _ = visit("ja", script=False, event=site.open_slug)
    link = page.get_by_role("link", name=FALLBACK["ja"])
    assert link.is_visible()
    assert link.get_attribute("href") == f"{site.url}/events/{site.open_slug}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_at_320_px_nothing_scrolls_sideways_and_targets_are_big(embedding, visit, lang):
    page, _ = visit(lang, width=NARROW, event=embedding.site.open_slug)
    widget = rendered(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW
    for selector in ("button[type=submit]", "#country", "#consent"):
        box = widget.locator(selector).evaluate(
            "e => (e.closest('.checkbox') || e).getBoundingClientRect().height")
        assert box >= 44, selector
