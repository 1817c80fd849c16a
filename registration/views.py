"""Public pages: the programme, an event, sign-up, the attendee's own page, calendar files."""

from flask import Blueprint

bp = Blueprint("registration", __name__)


def format_helpers():
    """Template globals for showing times to people."""
    return {}
