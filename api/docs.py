"""GET /api/v1/docs: the OpenAPI document as a page of our own (no script, nothing from another
site: the app's Content-Security-Policy holds). A plain blueprint: the page is not part of the
API it documents."""

from flask import Blueprint, current_app, render_template

from api.blueprint import PREFIX, sets_no_cookie, spec

bp = Blueprint("api_docs", __name__, url_prefix=PREFIX)
bp.before_request(sets_no_cookie)


@bp.get("/docs")
def docs():
    """The API's operations, parameters and answers, for people."""
    return render_template("api/docs.html", spec=spec(current_app))
