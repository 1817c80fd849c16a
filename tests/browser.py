"""The attendee's pages as a browser reaches them, defined once for the browser tests and for
`make screenshots`: the data they need, the way to open each one, Debian's Chromium under
Playwright, and axe-core (the copy axe-playwright-python ships)."""

import csv
import io
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest

from extensions import db
from tests.chromium import launch, missing_browser  # noqa: F401  (used by the browser tests)
from tests.conftest import (
    ATTENDEE,
    ORGANISER_EMAIL,
    ORGANISER_PASSWORD,
    base_config,
    make_app,
    make_event,
    make_organiser,
)
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


def open_page(page, site: Site, name: str, lang: str, pages: dict = PAGES) -> None:
    """Open one of PAGES (or CONSOLE_PAGES); AssertionError when it answers another status
    than it should."""
    expected, opener = pages[name]
    status = opener(page, site, lang)
    assert status == expected, f"{name} ({lang}) answered {status}, not {expected}: {page.url}"


# The organiser console. Its openers are called in a tab already signed in as the seeded
# organiser (console_tab), except those of SIGNED_OUT_PAGES.

CONSOLE_SUBMIT = "main form[method=post] button[type=submit]"  # not the header's "Sign out"


def sign_in(page, site: Site, lang: str = "en") -> None:
    """Sign the page's browser context in as the seeded organiser, through the sign-in form."""
    page.goto(site.at("/admin/login", lang))
    page.fill("#email", ORGANISER_EMAIL)
    page.fill("#password", ORGANISER_PASSWORD)
    status = _send(page, CONSOLE_SUBMIT)
    assert status == 200 and urlparse(page.url).path == "/admin/", (status, page.url)


def open_sign_in_error(page, site, lang):
    _goto(page, site.at("/admin/login", lang))
    page.fill("#email", ORGANISER_EMAIL)
    page.fill("#password", "not the password")
    return _send(page, CONSOLE_SUBMIT)


def changed_programme(page, site: Site) -> bytes:
    """The programme as the console downloads it, edited so that its preview has a row of each
    kind: a new session (with a long slug), a rescheduled one, a cancelled one with people to
    tell, a retitled one."""
    response = page.request.get(site.url + "/admin/programme.csv")
    assert response.status == 200, response.status
    rows = list(csv.DictReader(io.StringIO(response.body().decode("utf-8-sig"))))
    by_slug = {row["slug"]: row for row in rows}
    by_slug[site.open_slug]["title"] += " (second edition)"
    by_slug["cities-and-data"]["status"] = "cancelled"
    night = by_slug[site.night_slug]
    for column in ("starts_at", "ends_at"):
        moved = datetime.fromisoformat(night[column]) + timedelta(days=1)
        night[column] = moved.isoformat(sep=" ", timespec="minutes")
    rows.append({**by_slug[site.open_slug], "slug": "a-new-session-whose-slug-is-long-enough-"
                 "to-wrap-on-a-phone", "title": "A new session"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def open_upload_preview(page, site, lang):
    _goto(page, site.at("/admin/programme", lang))
    page.set_input_files("#file", files=[{"name": "programme-with-changes.csv",
                                          "mimeType": "text/csv",
                                          "buffer": changed_programme(page, site)}])
    return _send(page, CONSOLE_SUBMIT)


def open_registration(page, site, lang):
    """A seat holder's own console page, reached from the session's list as an organiser
    would."""
    _goto(page, site.at(f"/admin/events/{site.full_slug}", lang))
    with page.expect_navigation() as navigation:
        page.click("a[href^='/admin/registrations/']")
    return navigation.value.status


def open_message_preview(page, site, lang):
    """A message to a session's seat holders and waiting list, in both languages, previewed."""
    _goto(page, site.at(f"/admin/events/{site.full_slug}/messages/new", lang))
    page.check("input[name=audience][value=both]")
    page.fill("#subject_en", "Slides for Thursday")
    page.fill("#text_en", "Hello,\n\nThe slides are at https://example.org/slides.\n\nSee you!")
    page.fill("#subject_ja", "木曜日の資料")
    page.fill("#text_ja", "資料はこちらです: https://example.org/slides")
    return _send(page, CONSOLE_SUBMIT)


# Name -> (status, opener), as PAGES.
CONSOLE_PAGES = {
    "sign-in": (200, _opens(lambda site: "/admin/login")),
    "sign-in-error": (401, open_sign_in_error),
    "dashboard": (200, _opens(lambda site: "/admin/")),
    "session": (200, _opens(lambda site: f"/admin/events/{site.full_slug}")),
    "new-session": (200, _opens(lambda site: "/admin/events/new")),
    "duplicate": (200, _opens(lambda site: f"/admin/events/{site.open_slug}/duplicate")),
    "attendance": (200, _opens(lambda site: f"/admin/events/{site.full_slug}/attendance")),
    "upload": (200, _opens(lambda site: "/admin/programme")),
    "upload-preview": (200, open_upload_preview),
    "profile": (200, _opens(lambda site: "/admin/profile")),
    "audit-log": (200, _opens(lambda site: "/admin/audit")),
    "attendee-search": (200, _opens(lambda site: "/admin/attendees?q=example")),
    "registration": (200, open_registration),
    "add-attendee": (200, _opens(lambda site: f"/admin/events/{site.open_slug}/attendees/new")),
    "compose-message": (200, _opens(lambda site: f"/admin/events/{site.full_slug}/messages/new")),
    "message-preview": (200, open_message_preview),
}
SIGNED_OUT_PAGES = frozenset({"sign-in", "sign-in-error"})


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


@pytest.fixture(scope="module")
def console_tab(browser, site):
    """A console tab of a given width, signed in as the seeded organiser (or, for
    SIGNED_OUT_PAGES, never signed in), kept for the module's tests."""
    tabs = {}

    def at_width(width: int, name: str = "dashboard"):
        signed_in = name not in SIGNED_OUT_PAGES
        if (width, signed_in) not in tabs:
            page = new_page(browser, width)
            if signed_in:
                sign_in(page, site)
            tabs[width, signed_in] = page
        return tabs[width, signed_in]

    yield at_width
    for page in tabs.values():
        page.context.close()


def widest(page) -> list:
    """The outermost elements that reach past the viewport (not those scrolling inside a box of
    their own, such as a wide table in its region), for a failure message."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const past = e => e && e.getBoundingClientRect().right > width;
        const boxed = e => { for (let a = e.parentElement; a && a !== document.body;
                                  a = a.parentElement)
            if (getComputedStyle(a).overflowX !== 'visible') return true;
            return false; };
        return [...document.querySelectorAll('body *')]
            .filter(e => past(e) && !past(e.parentElement) && !boxed(e))
            .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                + (e.className && typeof e.className === 'string' ? '.' + e.className : '')
                + ' ' + Math.round(e.getBoundingClientRect().right) + 'px'); }""")


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


# Where the keyboard focus is, and whether it can be seen (every browser test module asks).

def focused(page, selector: str) -> bool:
    return page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)",
                         selector)


def focus_path(page) -> str:
    return page.evaluate("""() => { const e = document.activeElement;
        if (!e) return 'nothing';
        const href = e.getAttribute('href');
        return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
            + (e.name ? '[name=' + e.name + ']' : '')
            + (href ? '[href=' + href.slice(0, 60) + ']' : ''); }""")


def _each_page(names, open_one, check) -> list[str]:
    # open_one(name) leaves the page loaded and returns it (AssertionError: a wrong status);
    # check(name, page) returns what is wrong there, if anything.
    problems = []
    for name in names:
        try:
            page = open_one(name)
        except AssertionError as exc:
            problems.append(str(exc))
            continue
        problems += check(name, page)
    return problems


def heading_and_title_problems(names, open_one) -> list[str]:
    """What breaks "one h1 and a title of its own" among these pages, each opened by
    open_one(name)."""
    titles = {}

    def check(name, page):
        titles[name] = page.title()
        headings = page.locator("h1").all_inner_texts()
        return [] if len(headings) == 1 else [f"{name} has {len(headings)} h1: {headings}"]

    problems = _each_page(names, open_one, check)
    for title in set(titles.values()):
        sharing = [name for name in titles if titles[name] == title]
        if len(sharing) > 1:
            problems.append(f"{' and '.join(sharing)} share the title {title!r}")
    return problems


def skip_link_problems(names, open_one) -> list[str]:
    """The pages where the first Tab stop is not the skip link, or the link leaves the focus
    elsewhere than on <main>."""

    def check(name, page):
        page.keyboard.press("Tab")
        if not focused(page, "a[href='#main']"):
            return [f"{name}: the first Tab stop is {focus_path(page)}"]
        page.keyboard.press("Enter")
        if not focused(page, "main#main"):
            return [f"{name}: the skip link left the focus on {focus_path(page)}"]
        return []

    return _each_page(names, open_one, check)


def rgba(css: str) -> tuple[float, float, float, float]:
    """A computed colour (Chromium gives rgb() or rgba()) as 0-255 channels and an alpha."""
    match = re.search(r"rgba?\(([^)]*)\)", css)
    assert match, f"not an rgb() colour: {css!r}"
    parts = [float(part) for part in re.split(r"[\s,/]+", match.group(1).strip()) if part]
    return (*parts[:3], parts[3] if len(parts) > 3 else 1.0)


def over(colour, background):
    """A colour with alpha painted over an opaque background."""
    *rgb, alpha = colour
    return tuple(alpha * c + (1 - alpha) * b for c, b in zip(rgb, background[:3], strict=True))


def luminance(rgb) -> float:
    """WCAG 2 relative luminance."""
    def linear(channel):
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(channel) for channel in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


FOCUS_STYLE = """() => {
    const e = document.activeElement, s = getComputedStyle(e);
    const opaque = c => c && c !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(c);
    const body = getComputedStyle(document.body).backgroundColor;
    const root = getComputedStyle(document.documentElement).backgroundColor;
    return {outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0
                     ? s.outlineColor : null,
            shadow: s.boxShadow !== 'none' ? s.boxShadow : null,
            page: opaque(body) ? body : opaque(root) ? root : 'rgb(255, 255, 255)'};
}"""


def focus_problems(page, where: str) -> list[str]:
    """Tab through every stop of the page; say which has no indicator or a faint one."""
    problems = []
    first = None
    for _ in range(80):
        page.keyboard.press("Tab")
        here = focus_path(page)
        if here == "body" or here == first:
            break
        first = first or here
        style = page.evaluate(FOCUS_STYLE)
        ring = style["outline"] or style["shadow"]
        if ring is None:
            problems.append(f"{where}: {here} shows no outline or box-shadow when focused")
            continue
        background = rgba(style["page"])
        ratio = contrast(over(rgba(ring), background), background[:3])
        if ratio < 3:
            problems.append(f"{where}: {here}'s focus ring {ring} has {ratio:.2f}:1 against "
                            f"{style['page']}")
    return problems
