"""Debian's Chromium under Playwright, for every browser test: where it is, how it starts, and
why it can't run here (one line, which conftest prints once when the browser tests are left out).
Nothing here imports the test fixtures, so conftest can ask it."""

import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOW_TO_ENABLE = ("`apt-get install chromium fonts-noto-cjk` (and the test extras, for Playwright) "
                 "runs the browser tests")
# Without the background-networking switches Chromium keeps reaching for Google's hosts, which
# this machine's closed network refuses many times a second; root has no sandbox.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def missing_browser() -> str | None:
    """Why the browser tests can't run here, in one line, or None when they can."""
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed: {HOW_TO_ENABLE}"
    try:
        import axe_playwright_python  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed: {HOW_TO_ENABLE}"
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
