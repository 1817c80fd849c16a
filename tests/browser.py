"""The attendee's pages as a browser reaches them, defined once for the browser tests and for
`make screenshots`: the data they need, the way to open each one, Debian's Chromium under
Playwright, and axe-core (the copy axe-playwright-python ships)."""

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extensions import db
from tests.chromium import launch, missing_browser  # noqa: F401  (used by the browser tests)
from tests.conftest import ATTENDEE, base_config, make_app, make_event, make_organiser
from tests.servers import GunicornServer

SECRET_KEY = "browser-test-secret-key"
WORKERS = 3  # a browser loads a page, its stylesheet and script on parallel connections

LANGUAGES = ("en", "ja")
WIDTHS = (1280, 375)
HEIGHT = {1280: 800, 375: 812, 320: 640}
ACTION_TIMEOUT_MS = 5000
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]

# A session at 03:00-04:30 in Berlin in July (summer time everywhere involved): 10:00-11:30 in
# Tokyo, 21:00 the day before in New York.
NIGHT_START = (3, 0)
NIGHT_LENGTH = timedelta(hours=1, minutes=30)


@dataclass
class Site:
    """The server's address and what the seeded data is called."""

    url: str
    open_slug: str  # takes sign-ups, no cap
    full_slug: str  # one seat, taken; three people waiting
    night_slug: str  # 03:00-04:30 Berlin, in July
    seat_token: str
    waiting_token: str  # number 3 on the waiting list
    cancel_token: str  # a seat holder whose cancel confirmation is shown (never pressed)
    spare_tokens: list[str] = field(default_factory=list)  # seat holders to cancel, one a visit
    # The page of all of one person's sessions: a seat at two, the waiting list of the full
    # one, a past one with its recording.
    me_token: str = ""
    me_waiting_id: int = 0  # their place on the full session's waiting list
    # (link token, registration id) of seat holders to cancel from their page, one a visit
    me_spares: list[tuple[str, int]] = field(default_factory=list)
    emails: itertools.count = field(default_factory=itertools.count)
    app: object = None  # the app on the same database, for looking at what was stored

    def at(self, path: str, lang: str | None) -> str:
        if lang is None:
            return self.url + path
        return f"{self.url}{path}{'&' if '?' in path else '?'}lang={lang}"

    def new_email(self) -> str:
        return f"browser.{next(self.emails)}@example.org"


def next_july_night(now: datetime) -> datetime:
    """03:00 Berlin on the first 14 July at least a month away (the session must not have begun
    by the time the tests run)."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    year = now.year
    while True:
        start = datetime(year, 7, 14, *NIGHT_START, tzinfo=berlin)
        if start - now > timedelta(days=30):
            return start.astimezone(UTC)
        year += 1


def seed(now: datetime, spare: int = 12) -> dict:
    """The pages' data, through the app's own sign-up (inside an app context); the server reads
    the real clock, so sessions are placed relative to `now`."""
    from registration import people, services, tokens
    from tests.conftest import make_registration

    def session(slug, title, **fields):
        fields.setdefault("starts_at", now + timedelta(days=30))
        return make_event(slug=slug, title=title, created_at=now, updated_at=now, **fields)

    def person(event, n, **fields):
        values = {**ATTENDEE, "name": f"Person {n}", "email": f"person.{n}@example.org",
                  "email_key": f"person.{n}@example.org", "consent_version": "2025-06", **fields}
        return services.sign_up(event, services.Applicant(**values), now)

    open_event = session("climate-finance-101", "Climate finance 101")
    full = session("resilient-ports", "Resilient ports", capacity=1)
    night_start = next_july_night(now)
    night = session("night-owls", "Night owls: heat action plans", starts_at=night_start,
                    ends_at=night_start + NIGHT_LENGTH)
    seat = person(open_event, 1)
    person(full, 2)
    waiting = [person(full, n) for n in (3, 4, 5)]
    cancelled = session("cities-and-data", "Cities and data")
    holders = [person(cancelled, 10 + n) for n in range(spare + 1)]
    # Person 1's other sessions: a seat, the waiting list, one that has ended (with its
    # recording, added as the importer would: sign-ups close at the end).
    person(night, 1)
    me_waiting = person(full, 1)
    ended = session("heat-maps", "Heat maps in practice", starts_at=now - timedelta(days=12),
                    recording_url="https://video.example.org/heat-maps")
    make_registration(ended, **{**ATTENDEE, "name": "Person 1", "email": "person.1@example.org",
                                "registered_at": now - timedelta(days=20)})
    me_spares = [person(cancelled, 40 + n) for n in range(spare)]
    make_organiser()
    db.session.commit()
    return {
        "me_token": tokens.me_token(people.find("person.1@example.org")),
        "me_waiting_id": me_waiting.id,
        "me_spares": [(tokens.me_token(people.find(r.email_key)), r.id) for r in me_spares],
        "open_slug": open_event.slug, "full_slug": full.slug, "night_slug": "night-owls",
        "seat_token": tokens.manage_token(seat), "waiting_token": tokens.manage_token(waiting[-1]),
        "cancel_token": tokens.manage_token(holders[0]),
        "spare_tokens": [tokens.manage_token(holder) for holder in holders[1:]],
    }


def server_settings(database_url: str, folder: Path, base_url: str) -> dict:
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "BASE_URL": base_url,
        "SCHEDULER": "off",
        "RATELIMIT_ENABLED": "false",
        "MAIL_BACKEND": "file",
        "MAIL_OUTBOX_DIR": str(folder / "outbox"),
    }


def seeded_app(database_url: str, folder: Path, now: datetime):
    """The app on this (migrated, empty) database with the pages' data added; returns the app
    (its context closed) and the seeded names."""
    app = make_app({**base_config(database_url, folder), "SECRET_KEY": SECRET_KEY,
                    "CLOCK": lambda: now})
    with app.app_context():
        names = seed(now)
        db.session.remove()
        db.engine.dispose()
    return app, names


def start_site(database_url: str, folder: Path, log_name="gunicorn.log"):
    """Seed the database, start gunicorn on it; returns (server, site). Stop the server."""
    now = datetime.now(UTC)
    app, names = seeded_app(database_url, folder, now)
    server = GunicornServer("app:create_app()", workers=WORKERS, log_path=folder / log_name)
    server.start(server_settings(database_url, folder, server.url))
    return server, Site(url=server.url, app=app, **names)


@pytest.fixture(scope="module")
def site(module_database_url, tmp_path_factory):
    """One gunicorn server for the module's tests, on each kind of database, data seeded."""
    server, site = start_site(module_database_url, tmp_path_factory.mktemp("site"))
    yield site
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


# The pages: each opener leaves the page loaded and returns the HTTP status it answered with.

def _goto(page, url):
    return page.goto(url).status


def _opens(path_of):
    """An opener of PAGES that goes to the path `path_of(site)` names, in the language."""
    return lambda page, site, lang: _goto(page, site.at(path_of(site), lang))


def _send(page, button="form[method=post] button[type=submit]"):
    with page.expect_navigation() as navigation:
        page.click(button)
    return navigation.value.status


def fill_sign_up(page, email: str) -> None:
    """Fill the event page's form as a person would; the type of organisation may be a select
    or radios."""
    page.fill("#name", ATTENDEE["name"])
    page.fill("#email", email)
    page.fill("#organisation", ATTENDEE["organisation"])
    radio = page.locator(f"input[name=affiliation][value={ATTENDEE['affiliation']}]")
    if radio.count():
        radio.check()
    else:
        page.select_option("select[name=affiliation]", ATTENDEE["affiliation"])
    page.select_option("#country", ATTENDEE["country"])
    page.check("input[name=consent]")


def open_form_with_errors(page, site, lang):
    _goto(page, site.at(f"/events/{site.open_slug}", lang))
    return _send(page)


def open_thank_you(page, site, lang):
    _goto(page, site.at(f"/events/{site.open_slug}", lang))
    fill_sign_up(page, site.new_email())
    return _send(page)


def several_url(site, lang) -> str:
    """The form for several sessions: one with seats, a full one, the night one."""
    slugs = (site.open_slug, site.full_slug, site.night_slug)
    return site.at("/signup?" + "&".join(f"event={slug}" for slug in slugs), lang)


def open_several_with_errors(page, site, lang):
    _goto(page, several_url(site, lang))
    return _send(page)


def open_several_thank_you(page, site, lang):
    _goto(page, several_url(site, lang))
    fill_sign_up(page, site.new_email())
    return _send(page)


def open_cancelled(page, site, lang):
    token = site.spare_tokens.pop()
    status = _goto(page, site.at(f"/r/{token}/cancel", lang))
    if status != 200:
        return f"{status} for the cancel confirmation"
    return _send(page, f"form[action*='/r/{token}/cancel'] button[type=submit]")


def open_me_cancelled(page, site, lang):
    token, registration_id = site.me_spares.pop()
    status = _goto(page, site.at(f"/me/{token}/cancel/{registration_id}", lang))
    if status != 200:
        return f"{status} for the cancel confirmation"
    return _send(page, f"form[action*='/cancel/{registration_id}'] button[type=submit]")


def open_lost_link_errors(page, site, lang):
    _goto(page, site.at("/me", lang))
    return _send(page)


def open_link_sent(page, site, lang):
    _goto(page, site.at("/me", lang))
    page.fill("#email", "person.1@example.org")
    return _send(page)


PAGES = {
    "programme": (200, _opens(lambda site: "/")),
    "event": (200, _opens(lambda site: f"/events/{site.open_slug}")),
    "form-errors": (422, open_form_with_errors),
    "thank-you": (200, open_thank_you),
    "manage-seat": (200, _opens(lambda site: f"/r/{site.seat_token}")),
    "manage-waiting": (200, _opens(lambda site: f"/r/{site.waiting_token}")),
    "cancel-confirm": (200, _opens(lambda site: f"/r/{site.cancel_token}/cancel")),
    "cancelled": (200, open_cancelled),
    "several": (200, lambda page, site, lang: _goto(page, several_url(site, lang))),
    "several-errors": (422, open_several_with_errors),
    "several-thank-you": (200, open_several_thank_you),
    "my-sessions": (200, _opens(lambda site: f"/me/{site.me_token}")),
    "my-cancel-confirm": (200, _opens(
        lambda site: f"/me/{site.me_token}/cancel/{site.me_waiting_id}")),
    "my-cancelled": (200, open_me_cancelled),
    "my-delete-confirm": (200, _opens(lambda site: f"/me/{site.me_token}/delete")),
    "lost-link": (200, _opens(lambda site: "/me")),
    "lost-link-errors": (422, open_lost_link_errors),
    "link-sent": (200, open_link_sent),
    "signed-out": (200, _opens(lambda site: "/me/sent?after=sign-out")),
    "not-found": (404, _opens(lambda site: "/events/no-such-session")),
    "privacy": (200, _opens(lambda site: "/privacy")),
}


def open_page(page, site: Site, name: str, lang: str) -> None:
    """Open one of PAGES; AssertionError when it answers another status than it should."""
    expected, opener = PAGES[name]
    status = opener(page, site, lang)
    assert status == expected, f"{name} ({lang}) answered {status}, not {expected}: {page.url}"


def new_page(browser, width: int, **context_options):
    """A page in a fresh context (no cookies) of this width; close its context when done."""
    context = browser.new_context(viewport={"width": width, "height": HEIGHT.get(width, 800)},
                                  **context_options)
    # Every page here answers in milliseconds: a missing element fails in seconds, not 30.
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    # A page load waits for gunicorn's workers, which a busy CI machine slows down.
    context.set_default_navigation_timeout(3 * ACTION_TIMEOUT_MS)
    return context.new_page()


@pytest.fixture(scope="module")
def tab(browser):
    """A browser tab of a given width, kept for the module's tests (a fresh context costs as
    much as a page load); every address they open names its language, so the cookie left by
    one page does not decide the next."""
    tabs = {}

    def at_width(width: int):
        if width not in tabs:
            tabs[width] = new_page(browser, width)
        return tabs[width]

    yield at_width
    for page in tabs.values():
        page.context.close()


def axe_violations(page) -> list[dict]:
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    return Axe().run(page, options=options).response["violations"]


def describe_violations(violations: list[dict], where: str) -> str:
    lines = [f"{len(violations)} axe-core violation(s) on {where}:"]
    for violation in violations:
        targets = "; ".join(" ".join(map(str, node["target"])) for node in violation["nodes"])
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} "
                     f"at {targets}")
    return "\n".join(lines)
