"""The public API's cost per request, in one process (Flask's test client, SQLite), against the
page that shows the same data: the programme as JSON against the programme page, one session as
JSON against its page, a 304 against a 200, the form description, and a sign-up through the API
against one through the form (its CSRF token fetched beforehand).

Medians of `--repeat` requests each, after a warm-up; the machine may be shared, so the ratios
matter more than the milliseconds.

    .venv/bin/python bench/api.py [--events 100] [--repeat 200]
"""

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.support.databases import quiet  # noqa: E402

NOW = datetime(2025, 6, 20, 9, 0, tzinfo=UTC)
PERSON = {"name": "Aiko Tanaka", "organisation": "City of Yokohama",
          "affiliation": "local_government", "country": "JP", "timezone": "Asia/Tokyo",
          "language": "en"}
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _app(workdir: Path, events: int):
    import flask_migrate

    from app import create_app
    from extensions import db
    from registration.models import Event

    app = create_app({"DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
                      "SECRET_KEY": "bench-secret-key", "SCHEDULER": "off",
                      "MAIL_BACKEND": "file", "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
                      "RATELIMIT_ENABLED": "false", "CLOCK": lambda: NOW})
    with app.app_context():
        quiet(flask_migrate.upgrade)
        for number in range(events):
            starts_at = NOW + timedelta(days=1 + number)
            db.session.add(Event(
                slug=f"session-{number:03d}", title=f"Session {number}", kind="webinar",
                pillar="exchange", starts_at=starts_at, ends_at=starts_at + timedelta(hours=1),
                timezone="Europe/Berlin", capacity=100, language="en",
                description="How cities fund climate action. " * 5, created_at=NOW,
                updated_at=NOW))
        db.session.commit()
    return app


def _median_ms(request, repeat: int) -> float:
    for _ in range(5):
        request()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = request()
        times.append(time.perf_counter() - started)
        assert response.status_code < 400, response.status_code
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = _app(Path(folder), args.events)
        client = app.test_client()
        etag = client.get("/api/v1/events").headers["ETag"]
        token = CSRF.search(client.get("/events/session-000").get_data(as_text=True)).group(1)
        count = iter(range(10**9))

        def api_sign_up():
            return client.post("/api/v1/events/session-000/registrations", json={
                **PERSON, "email": f"api{next(count)}@example.org", "consent": True})

        def form_sign_up():
            return client.post("/events/session-000/register", data={
                **PERSON, "email": f"form{next(count)}@example.org", "consent": "y",
                "csrf_token": token})

        rows = [
            (f"GET /api/v1/events ({args.events} sessions)",
             lambda: client.get("/api/v1/events"), "the programme page /",
             lambda: client.get("/")),
            ("GET /api/v1/events/{slug}", lambda: client.get("/api/v1/events/session-000"),
             "the session's page", lambda: client.get("/events/session-000")),
            ("GET /api/v1/events, If-None-Match (304)",
             lambda: client.get("/api/v1/events", headers={"If-None-Match": etag}),
             "the same, 200", lambda: client.get("/api/v1/events")),
            ("GET /api/v1/form?lang=ja", lambda: client.get("/api/v1/form?lang=ja"),
             "the session's page, ja", lambda: client.get("/events/session-000?lang=ja")),
            ("POST a sign-up to the API (202)", api_sign_up,
             "POST the form (303)", form_sign_up),
        ]
        print(f"{'ours':48} {'ms':>7}   {'against':28} {'ms':>7}  ratio")
        for label, ours, floor_label, floor in rows:
            mine = _median_ms(ours, args.repeat)
            theirs = _median_ms(floor, args.repeat)
            print(f"{label:48} {mine:7.2f}   {floor_label:28} {theirs:7.2f}  "
                  f"{mine / theirs:5.2f}×")


if __name__ == "__main__":
    main()
