"""The page language: chosen with ?lang= (kept in the `lang` cookie), else the visitor's
registration on a manage page, else Accept-Language, else English. The console is English."""

from pathlib import Path
from urllib.parse import urlencode

from flask import current_app, g, has_request_context, request
from flask_babel import get_locale, refresh
from werkzeug.exceptions import HTTPException

from registration.models import Language

COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_NAMES = {Language.EN: "English", Language.JA: "日本語"}
CONSOLE_PREFIX = "/admin"


def _choice(value: str | None) -> str | None:
    return value if value in LANGUAGE_NAMES else None


def _in_console() -> bool:
    return request.path == CONSOLE_PREFIX or request.path.startswith(CONSOLE_PREFIX + "/")


def _accepted() -> str | None:
    """The visitor's most wanted language we have, by its primary subtag: `ja-JP, en;q=0.9`
    is Japanese (an exact-match-first rule would pick the lower-ranked plain `en`)."""
    for value, _quality in request.accept_languages:
        if choice := _choice(value.replace("_", "-").split("-")[0].lower()):
            return choice
    return None


def missing_catalogues(root: Path) -> list[str]:
    """The languages besides English whose compiled catalogue (.mo) is missing under root:
    without it every page and email in that language silently falls back to English."""
    return [code for code in LANGUAGE_NAMES if code != Language.EN
            and not (root / "translations" / code / "LC_MESSAGES" / "messages.mo").is_file()]


def select_language() -> str:
    """Flask-Babel's locale selector (outside a request, and outside force_locale: English)."""
    if not has_request_context():
        return Language.EN
    if _in_console():
        return Language.EN
    return (
        _choice(request.args.get(COOKIE))
        or _choice(request.cookies.get(COOKIE))
        or _choice(g.get("registrant_language"))
        or _accepted()
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
    # A calendar file's ?lang= (a subscription's language) is for that file, not the device;
    # so is a JSON answer's, and any answer of a part that sets no cookie (the API and its
    # docs page, whoever embeds or links them: g.sets_no_cookie).
    if (chosen and not _in_console() and response.mimetype != "text/calendar"
            and not response.is_json and not g.get("sets_no_cookie")):
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True)
    if response.mimetype == "text/html":
        response.vary.update(("Cookie", "Accept-Language"))
    return response


def switch_url(language: str) -> str:
    """This page in another language: the same address with ?lang= set. A page answering a
    POST (a form with errors, a refusal) goes to the page the view names, else to the page
    at the same address when there is one (a confirmation page), else to the programme."""
    if request.method not in ("GET", "HEAD"):
        path = g.get("switch_path") or (request.path if _has_page(request.path) else "/")
        return f"{path}{'&' if '?' in path else '?'}{COOKIE}={language}"
    args = request.args.to_dict(flat=False)
    args[COOKIE] = [language]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def _has_page(path: str) -> bool:
    try:
        current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return False
    return True


def page_language() -> str:
    """The language this page (or email) is rendered in: 'en' or 'ja'."""
    return str(get_locale() or Language.EN)


def switch() -> list[tuple[str, str, str | None]]:
    """The language switch: each language's code, its name in itself, and the address of this
    page in it (None for the language the page is in)."""
    current = page_language()
    return [(code, name, None if code == current else switch_url(code))
            for code, name in LANGUAGE_NAMES.items()]


def template_helpers() -> dict:
    """Template globals for the page language and its switch."""
    return {"page_language": page_language, "language_names": LANGUAGE_NAMES,
            "language_switch": switch}
