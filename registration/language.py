"""The page language: chosen with ?lang= (kept in the `lang` cookie), else the visitor's
registration on a manage page, else Accept-Language, else English. The console is English."""

from urllib.parse import urlencode

from flask import g, has_request_context, request
from flask_babel import get_locale, refresh

from registration.models import Language

COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_NAMES = {Language.EN: "English", Language.JA: "日本語"}
CONSOLE_PREFIX = "/admin"


def _choice(value: str | None) -> str | None:
    return value if value in LANGUAGE_NAMES else None


def select_language() -> str:
    """Flask-Babel's locale selector (outside a request, and outside force_locale: English)."""
    if not has_request_context():
        return Language.EN
    if request.path.startswith(CONSOLE_PREFIX):
        return Language.EN
    return (
        _choice(request.args.get(COOKIE))
        or _choice(request.cookies.get(COOKIE))
        or _choice(g.get("registrant_language"))
        or request.accept_languages.best_match(tuple(LANGUAGE_NAMES))
        or Language.EN
    )


def start_in(language: str) -> None:
    """A page for one registrant starts in their language, unless the visitor chose one."""
    g.registrant_language = language
    refresh()


def keep_choice(response):
    """After a request: a language chosen with ?lang= is kept in a cookie; pages that follow
    Accept-Language or the cookie say so to caches."""
    chosen = _choice(request.args.get(COOKIE))
    if chosen and not request.path.startswith(CONSOLE_PREFIX):
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE, samesite="Lax",
                            secure=request.is_secure, httponly=True)
    if response.mimetype == "text/html":
        response.vary.update(("Cookie", "Accept-Language"))
    return response


def switch_url(language: str) -> str:
    """This page in another language: the same address with ?lang= set. A page answering a
    POST (a form with errors) has no address of its own: the view names the page to go to."""
    if request.method not in ("GET", "HEAD"):
        path = g.get("switch_path") or "/"
        return f"{path}?{COOKIE}={language}"
    args = request.args.to_dict(flat=False)
    args[COOKIE] = [language]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def page_language() -> str:
    """The language this page (or email) is rendered in: 'en' or 'ja'."""
    return str(get_locale() or Language.EN)


def template_helpers() -> dict:
    """Template globals for the page language and its switch."""
    return {"page_language": page_language, "language_names": LANGUAGE_NAMES,
            "language_switch_url": switch_url}
