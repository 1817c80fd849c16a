"""Another organisation's website embedding our sign-up, for the embed's browser tests and for
`make screenshots`: our app under gunicorn on one origin (CORS_ORIGINS naming the host), a tiny
static host on a second origin and another site (localhost, where we are 127.0.0.1) serving
pages with a strict CSP, and Chromium told to block third-party cookies."""

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

from tests.browser import WORKERS, Site, seeded_app, server_settings
from tests.chromium import CHROMIUM, LAUNCH_ARGS
from tests.servers import GunicornServer

# What an unfriendly host stylesheet does to everything it reaches.
HOSTILE_CSS = "* { color: red !important; font-size: 40px; font-family: serif !important; }"
HOST_TITLES = {"en": "Our city network: the forum", "ja": "都市ネットワーク：フォーラム"}
FALLBACK = {"en": "Sign up on the forum's site", "ja": "フォーラムのサイトで申し込む"}
# A visitor who reads each language, where people who read it may well be.
VISITORS = {"en": {"locale": "en-GB", "timezone_id": "Europe/London"},
            "ja": {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}}


def host_policy(app_origin: str, own_styles: bool) -> str:
    """The host's CSP: nothing but our script and our API (and the host's own images); the
    host's own stylesheet only on the page that brings one (the widget needs no style-src)."""
    policy = (f"default-src 'none'; script-src {app_origin}; connect-src {app_origin}; "
              "img-src 'self'")
    return policy + ("; style-src 'self'" if own_styles else "")


def host_page(app_origin: str, query: dict) -> tuple[str, bool]:
    """A host page (and whether it links the hostile stylesheet) from its query: lang, the
    event of a <forum-signup>, the filter of a <forum-programme>, hostile=1."""
    lang = query.get("lang", "en")
    hostile = query.get("hostile") == "1"
    parts = []
    if slug := query.get("event"):
        link = f"{app_origin}/events/{escape(slug)}"
        parts.append(f'<forum-signup event="{escape(slug)}"><a href="{link}">{FALLBACK[lang]}'
                     "</a></forum-signup>")
    if "programme" in query:
        only = query["programme"]
        attribute = f' filter-language="{escape(only)}"' if only else ""
        parts.append(f'<forum-programme{attribute}><a href="{app_origin}/">{FALLBACK[lang]}'
                     "</a></forum-programme>")
    head = '<link rel="stylesheet" href="/host.css">' if hostile else ""
    html = f"""<!doctype html>
<html lang="{escape(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{HOST_TITLES[lang]}</title>{head}
<script src="{app_origin}/embed.js" defer></script></head>
<body><header><p>{HOST_TITLES[lang]}</p></header>
<main><h1>{HOST_TITLES[lang]}</h1>{''.join(parts)}</main></body></html>"""
    return html, hostile


class HostSite:
    """The host's static server on a free loopback port, reached as http://localhost:<port>
    (another site than our 127.0.0.1, so our cookies would be third-party there)."""

    def __init__(self):
        self.app_origin = ""
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (the standard library's name)
                url = urlparse(self.path)
                if url.path == "/host.css":
                    self._answer(HOSTILE_CSS.encode(), "text/css", None)
                    return
                if url.path == "/blank":
                    self._answer(b"<!doctype html><title>blank</title>", "text/html", None)
                    return
                if url.path == "/cookie":
                    # A cookie meant to be kept by a page of any site: readable by fetch with
                    # credentials, and allowed third-party if the browser allows any.
                    self._answer(b"{}", "application/json", None, {
                        "Set-Cookie": "probe=1; SameSite=None; Secure; Path=/",
                        "Access-Control-Allow-Origin": self.headers.get("Origin", "*"),
                        "Access-Control-Allow-Credentials": "true"})
                    return
                query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                html, hostile = host_page(host.app_origin, query)
                self._answer(html.encode(), "text/html; charset=utf-8",
                             host_policy(host.app_origin, hostile))

            def _answer(self, body, content_type, policy, headers=None):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if policy:
                    self.send_header("Content-Security-Policy", policy)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self, app_origin: str) -> "HostSite":
        self.app_origin = app_origin
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def page(self, lang: str = "en", **query) -> str:
        """The address of a host page: event=slug, programme=<language or ''>, hostile='1'."""
        return f"{self.origin}/?{urlencode({'lang': lang, **query})}"


@dataclass
class Embedding:
    """Our site and the host that embeds it."""

    site: Site
    host: HostSite
    server: GunicornServer

    def stop(self) -> None:
        self.server.stop()
        self.host.stop()


def start_embedding(database_url: str, folder: Path) -> Embedding:
    """Seed the database, start the host and our gunicorn (CORS_ORIGINS = the host); stop()
    both when done."""
    now = datetime.now(UTC)
    app, names = seeded_app(database_url, folder, now)
    host = HostSite()
    server = GunicornServer("app:create_app()", workers=WORKERS, log_path=folder / "gunicorn.log")
    try:
        server.start({**server_settings(database_url, folder, server.url),
                      "CORS_ORIGINS": host.origin})
    except BaseException:
        host.server.server_close()
        raise
    host.start(server.url)
    return Embedding(site=Site(url=server.url, app=app, **names), host=host, server=server)


def launch_blocking_third_party_cookies(playwright):
    """Debian's Chromium as the other browser tests start it, with third-party cookies blocked
    as a privacy-minded browser does. Playwright's contexts are off-the-record profiles, which
    block them already (test_the_browser_blocks_third_party_cookies checks it); the switch says
    so again for a build that would not."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*LAUNCH_ARGS, "--test-third-party-cookie-phaseout"])


# Every securitypolicyviolation the page sees (in its shadow roots too: the event is composed),
# from before the first script runs.
WATCH_CSP = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(
    e.violatedDirective + ' ' + e.blockedURI), true);"""


def watch(page) -> list[str]:
    """Collect the page's CSP violations and console errors (from now on) into a list."""
    page.add_init_script(WATCH_CSP)
    problems = []
    # A 422 is the API's answer to a form with mistakes, which Chromium logs as a failed load.
    page.on("console", lambda message: message.type == "error"
            and "status of 422 (" not in message.text
            and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems


def csp_violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def rendered(page, selector: str = "forum-signup"):
    """Wait until the element's shadow root shows the widget (not the slot); return it."""
    page.wait_for_function(
        "s => { const e = document.querySelector(s); return e && e.shadowRoot"
        " && e.shadowRoot.querySelector('.fs form, .fs .notice'); }", arg=selector)
    return page.locator(selector)


# The README's picture: the English sign-up on a sample host page at a desktop's width.
README_PICTURE = Path(__file__).resolve().parent.parent / "docs" / "embed.png"


def take_embed_screenshots(browser, folder: Path, widths=(1280, 375)) -> list[str]:
    """embed-<signup|programme>-<lang>-<width>.png under folder, and the README's picture, from
    a scratch SQLite database; returns the problems met."""
    import tempfile

    from tests.browser import new_page
    from tests.conftest import migrate

    problems = []
    with tempfile.TemporaryDirectory(prefix="forum-embed-") as scratch:
        scratch = Path(scratch)
        database_url = f"sqlite:///{scratch / 'forum.sqlite3'}"
        migrate(database_url, scratch)
        embedding = start_embedding(database_url, scratch)
        try:
            for lang, visitor in VISITORS.items():
                for width in widths:
                    for name, query, selector in (
                            ("signup", {"event": embedding.site.open_slug}, "forum-signup"),
                            ("programme", {"programme": ""}, "forum-programme")):
                        page = new_page(browser, width, **visitor)
                        try:
                            page.goto(embedding.host.page(lang, **query))
                            rendered(page, selector)
                            path = folder / f"embed-{name}-{lang}-{width}.png"
                            page.screenshot(path=path, full_page=True)
                            if (name, lang, width) == ("signup", "en", 1280):
                                README_PICTURE.parent.mkdir(exist_ok=True)
                                page.screenshot(path=README_PICTURE, full_page=True)
                            # The same sent empty: the error summary and each field's message.
                            widget = page.locator(selector)
                            widget.locator("button[type=submit]").click()
                            widget.locator(".error-summary").wait_for()
                            page.screenshot(path=folder / f"embed-{name}-errors-{lang}-{width}.png",
                                            full_page=True)
                        except Exception as exc:  # noqa: BLE001  (say it, photograph on)
                            problems.append(f"embed {name} {lang} {width}: {exc}".splitlines()[0])
                        finally:
                            page.context.close()
        finally:
            embedding.stop()
    return problems
