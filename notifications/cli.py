"""Command-line tools for the outbox: dispatch."""


def init_app(app):
    """Register the outbox commands on the app's CLI."""
