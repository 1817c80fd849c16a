"""Parts of the public pages rendered once per process and page language: what depends only on
sessions' rows (their details, their times, the programme's other sessions) or on nothing of
the visitor's (a blank sign-up form's fields).

A fragment's key holds the values it shows: every column of each session in it but the live
seat count, and the page language. Each request reads those rows anyway, so a change made in
any worker or on any host is a new key at the next request there; the entry it replaces ages
out of a bounded LRU. Nothing per request is ever in a fragment: the CSRF token, the seats
left, a form's values and errors, a remembered person's details, the language switch.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from markupsafe import Markup

from registration.language import page_language
from registration.models import Event

# Shown live, never from a fragment: the seats taken change with every sign-up.
LIVE_COLUMNS = frozenset({"confirmed_count"})
# Entries per process: a fragment is a few kB, a programme a few hundred sessions.
DEFAULT_SIZE = 2000
# The sign-up form's fields the page itself fills in; any other field with a value holds what
# a person typed or had remembered.
PAGE_FIELDS = frozenset({"csrf_token", "timezone", "language"})


class FragmentCache:
    """A bounded, thread-safe LRU of rendered HTML; size 0 renders every time."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[tuple, Markup] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple, render: Callable[[], Markup]) -> Markup:
        """The HTML kept under key, else render() kept under it."""
        if not self.size:
            return render()
        with self.lock:
            html = self.entries.get(key)
            if html is not None:
                self.entries.move_to_end(key)
                return html
        # Rendered outside the lock: two threads may render the same key once each.
        html = render()
        with self.lock:
            self.entries[key] = html
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return html


@lru_cache(maxsize=1)
def _version_columns() -> tuple[str, ...]:
    return tuple(column.key for column in sa.inspect(Event).column_attrs
                 if column.key not in LIVE_COLUMNS)


def version(event: Event) -> tuple:
    """What a fragment about a session depends on: every column but the live seat count (an
    edit through any path changes at least one of them, whatever its updated_at says)."""
    return tuple(getattr(event, name) for name in _version_columns())


def blank_form(form, default_timezone: str) -> tuple | None:
    """The key of a sign-up form's fields when nothing in them is the visitor's own (not sent,
    nothing typed or remembered, no errors): the zone and email language it starts with.
    None for any other form, whose fields are rendered for that request alone."""
    if form.is_submitted() or form.errors or form.prefilled:
        return None
    if any(field.data for field in form if field.name not in PAGE_FIELDS):
        return None
    return form.timezone.data or default_timezone, form.language.data


def fragment(name: str, key, caller) -> Markup:
    """`{% call fragment('name', key) %}…{% endcall %}`: the body rendered once per page
    language, mount point (the addresses url_for writes start with it) and key, which must hold
    everything else the body reads that may change; a key of None renders the body for this
    request only."""
    if key is None:
        return Markup(caller())
    cache: FragmentCache = current_app.extensions["fragments"]
    mount = request.script_root if has_request_context() else ""
    return cache.get((name, page_language(), mount, key), lambda: Markup(caller()))


def init_app(app) -> None:
    """One cache per app (FRAGMENT_CACHE_SIZE entries, 0 for none) and its template globals.
    None while templates reload when edited (`flask run --debug`): an edit shows at once."""
    size = 0 if app.jinja_env.auto_reload else app.config.get("FRAGMENT_CACHE_SIZE", DEFAULT_SIZE)
    app.extensions["fragments"] = FragmentCache(size)
    app.jinja_env.globals.update(fragment=fragment, version=version, blank_form=blank_form)
