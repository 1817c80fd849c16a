"""The headers of a page (or file) reached by a link that is a key: a manage link, or the link
to all of a person's sessions."""

from flask import Response


def private_page(page: str | Response) -> Response:
    """Never cached, and its address (a key) never sent on as a Referer to another site;
    same-origin POSTs keep theirs."""
    response = page if isinstance(page, Response) else Response(page)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
