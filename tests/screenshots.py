"""`make screenshots`: a PNG of every attendee page the browser tests check, in both languages
at both widths, under screenshots/ (named like event-ja-375.png), from the tests' own data on a
scratch SQLite database served by gunicorn."""

import sys
import tempfile
from pathlib import Path

from tests.browser import (
    LANGUAGES,
    PAGES,
    WIDTHS,
    launch,
    missing_browser,
    new_page,
    open_page,
    start_site,
)
from tests.conftest import migrate
from tests.servers import ROOT

# Each language seen as a visitor who reads it would see it (the times re-rendered where they
# are), and the same pictures on every machine whatever its own zone.
VISITORS = {"en": {"locale": "en-GB", "timezone_id": "Europe/London"},
            "ja": {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}}


def take_screenshots(folder: Path) -> list[str]:
    """Write the PNGs; return the problems met on the way (a page answering the wrong status is
    still photographed: the picture shows what a person would see)."""
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
                            try:
                                open_page(page, site, name, lang)
                            except Exception as exc:  # noqa: BLE001  (say it, photograph on)
                                problems.append(f"{name}-{lang}-{width}: {exc}".splitlines()[0])
                            page.screenshot(path=folder / f"{name}-{lang}-{width}.png",
                                            full_page=True)
                            page.context.close()
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
