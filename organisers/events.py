"""The console's programme pages: create and edit events, upload a programme, an event's
attendees and the timeline of its messages."""

from flask import Blueprint

bp = Blueprint("organiser_events", __name__, url_prefix="/admin")
