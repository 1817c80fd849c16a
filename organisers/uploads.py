"""What every upload of the console checks first: its size, its CSRF token, and that a CSV is
not another kind of file."""

import functools
from collections.abc import Callable

from flask import request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from extensions import csrf

# Files people pick by mistake instead of the CSV, by their first bytes.
BINARY_SIGNATURES = {
    b"PK\x03\x04": _l("an Excel workbook (.xlsx) or another zipped file"),
    b"\xd0\xcf\x11\xe0": _l("an old Excel workbook (.xls)"),
    b"%PDF": _l("a PDF"),
}


def binary_kind(data: bytes) -> str | None:
    """What kind of non-CSV file this is, in words, or None if it may be a CSV."""
    return next((kind for signature, kind in BINARY_SIGNATURES.items()
                 if data.startswith(signature)), None)


def upload_limit(max_bytes: int, too_large: Callable):
    """A view that takes a POST larger than the site-wide limit (which suits the sign-up
    form): the limit is raised for this request, then the CSRF token is checked; a body over
    `max_bytes` is answered by `too_large(**view_args)`.

    The global CSRF check is skipped for the view: it would read the body under the smaller
    limit, before the view could raise it, and answer every upload with a bare 413."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if request.method == "POST":
                request.max_content_length = max_bytes
                request.max_form_memory_size = max_bytes
                try:
                    csrf.protect()
                except RequestEntityTooLarge:
                    return too_large(*args, **kwargs)
            return view(*args, **kwargs)

        return csrf.exempt(wrapped)

    return decorate
