"""`make screenshots`: a PNG of every attendee page the browser tests check, in both languages
at both widths, and of every organiser console page (in English, its one language so far) at
both widths, and of the embeddable sign-up on a sample host page (which also refreshes the
README's docs/embed.png), under screenshots/ (named like event-ja-375.png,
console-dashboard-en-375.png and embed-signup-ja-375.png), from the tests' own data on a
scratch SQLite database served by gunicorn."""

import sys
import tempfile
from pathlib import Path

from tests.browser import (
    CONSOLE_PAGES,
    LANGUAGES,
    PAGES,
    SIGNED_OUT_PAGES,
    WIDTHS,
    launch,
    missing_browser,
    new_page,
    open_page,
    sign_in,
    start_site,
)
from tests.conftest import migrate
from tests.embed_host import take_embed_screenshots
from tests.servers import ROOT

# Each language seen as a visitor who reads it would see it (the times re-rendered where they
# are), and the same pictures on every machine whatever its own zone.
VISITORS = {"en": {"locale": "en-GB", "timezone_id": "Europe/London"},
            "ja": {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}}


def photograph(page, site, pages: dict, name: str, lang: str, path: Path) -> list[str]:
    """Open one page in its fresh tab, write its PNG, close the tab; return what went wrong (a
    page answering the wrong status is still photographed: the picture shows what a person
    would see)."""
    problems = []
    try:
        open_page(page, site, name, lang, pages)
    except Exception as exc:  # noqa: BLE001  (say it, photograph on)
        problems.append(f"{path.stem}: {exc}".splitlines()[0])
    page.screenshot(path=path, full_page=True)
    page.context.close()
    return problems


def take_screenshots(folder: Path) -> list[str]:
    """Write the PNGs; return the problems met on the way."""
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    problems = []
    with tempfile.TemporaryDirectory(prefix="forum-screenshots-") as scratch:
        scratch = Path(scratch)
        database_url = f"sqlite:///{scratch / 'forum.sqlite3'}"
        migrate(database_url, scratch)
        server, site = start_site(database_url, scratch)
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                for name in PAGES:
                    for lang in LANGUAGES:
                        for width in WIDTHS:
                            page = new_page(browser, width, **VISITORS[lang])
                            problems += photograph(page, site, PAGES, name, lang,
                                                   folder / f"{name}-{lang}-{width}.png")
                for name in CONSOLE_PAGES:
                    for width in WIDTHS:
                        page = new_page(browser, width, **VISITORS["en"])
                        if name not in SIGNED_OUT_PAGES:
                            sign_in(page, site)
                        problems += photograph(page, site, CONSOLE_PAGES, name, "en",
                                               folder / f"console-{name}-en-{width}.png")
                problems += take_embed_screenshots(browser, folder)
                browser.close()
        finally:
            server.stop()
    return problems


def main() -> int:
    if reason := missing_browser():
        print(reason, file=sys.stderr)
        return 1
    folder = ROOT / "screenshots"
    problems = take_screenshots(folder)
    count = len(list(folder.glob("*.png")))
    print(f"{count} screenshots in {folder.relative_to(ROOT)}/")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
