"""The organiser console in Chromium, on a desktop and a phone: no axe-core violation (WCAG 2.2
AA tags), the page never scrolls sideways at 375 px (a wide table scrolls inside its own named,
focusable region), one h1 and a title of its own, the skip link first and a visible focus. One
server and one browser for the module, on SQLite and on PostgreSQL."""

import pytest

from tests.browser import (
    CONSOLE_PAGES,
    WIDTHS,
    axe_violations,
    browser,  # noqa: F401  (fixture)
    console_tab,  # noqa: F401  (fixture)
    describe_violations,
    focus_problems,
    heading_and_title_problems,
    open_page,
    site,  # noqa: F401  (fixture)
    skip_link_problems,
    widest,
)

WIDE, PHONE = WIDTHS
# The pages whose tables are wider than a phone: the region around them must scroll.
WIDE_TABLES = ("dashboard", "session", "upload-preview", "audit-log", "attendee-search")


def open_console(console_tab, site, name: str, width: int):  # noqa: F811
    """The console tab of this width (signed in, or not for the sign-in pages) on the page."""
    page = console_tab(width, name)
    open_page(page, site, name, "en", CONSOLE_PAGES)
    return page


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", CONSOLE_PAGES)
def test_no_axe_violations(site, console_tab, name, width):  # noqa: F811
    page = open_console(console_tab, site, name, width)
    violations = axe_violations(page)
    assert not violations, describe_violations(violations, f"{name} ({width} px) at {page.url}")


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("name", CONSOLE_PAGES)
def test_nothing_scrolls_sideways_at_375_px(site, console_tab, name):  # noqa: F811
    page = open_console(console_tab, site, name, PHONE)
    assert scroll_width(page) <= PHONE, (name, scroll_width(page), widest(page))


UNBOXED_TABLES = """() => [...document.querySelectorAll('table')]
    .filter(t => t.getBoundingClientRect().right > document.documentElement.clientWidth
        && !t.closest('div.table-scroll[role=region][tabindex="0"][aria-label]'))
    .map(t => t.className || t.querySelector('caption')?.textContent || 'table')"""


@pytest.mark.parametrize("name", WIDE_TABLES)
def test_a_wide_table_scrolls_in_its_own_region_by_keyboard(site, console_tab, name):  # noqa: F811
    page = open_console(console_tab, site, name, PHONE)
    assert page.evaluate(UNBOXED_TABLES) == [], name
    # The first region that is shown (the charts' number tables wait, folded, in <details>).
    region = page.locator(".table-scroll:visible").first
    assert region.evaluate("r => r.scrollWidth > r.clientWidth"), f"{name}: nothing to scroll"
    region.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("r => r.scrollLeft > 0", arg=region.element_handle())


def test_every_console_page_has_one_h1_and_a_title_of_its_own(site, console_tab):  # noqa: F811
    problems = heading_and_title_problems(
        CONSOLE_PAGES, lambda name: open_console(console_tab, site, name, WIDE))
    assert not problems, "\n".join(problems)


def test_the_skip_link_is_the_first_tab_stop_and_moves_to_main(site, console_tab):  # noqa: F811
    # Not the sign-in with an error: its message is announced, and the focus stays put.
    problems = skip_link_problems(
        [name for name in CONSOLE_PAGES if name != "sign-in-error"],
        lambda name: open_console(console_tab, site, name, WIDE))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_control_shows_a_focus_ring_of_3_to_1(site, console_tab, width):  # noqa: F811
    problems = []
    for name in ("sign-in", "dashboard", "upload-preview", "profile"):
        page = open_console(console_tab, site, name, width)
        problems += focus_problems(page, f"{name} ({width} px)")
    assert not problems, "\n".join(problems)
