"""The scheduler that runs the dispatcher: embedded in `flask run`, never under gunicorn."""


def start_embedded_if_serving(app):
    """Start one background dispatcher when this process is `flask run`'s serving process."""
