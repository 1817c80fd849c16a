"""Command-line tools for the programme: import, demo data, attendee export."""


def init_app(app):
    """Register the programme commands on the app's CLI."""
