"""Public pages: the programme, calendar files, health, and the headers on every response."""

from datetime import timedelta

from tests.conftest import NOW, make_event


def test_programme_groups_upcoming_by_month_and_lists_past_apart(client):
    make_event(slug="july-one", title="July one", starts_at=NOW + timedelta(days=15))
    make_event(slug="august-one", title="August one", starts_at=NOW + timedelta(days=50))
    make_event(slug="long-ago", title="Long ago", starts_at=NOW - timedelta(days=30))
    page = client.get("/").get_data(as_text=True)
    assert page.index("July 2025") < page.index("July one") < page.index("August 2025")
    assert page.index("August one") < page.index("Past sessions") < page.index("Long ago")


def test_programme_filters_by_kind_pillar_and_language(client):
    make_event(slug="a", title="Webinar EN", kind="webinar", pillar="reflect", language="en")
    make_event(slug="b", title="ワークショップ", kind="workshop", pillar="exchange", language="ja")
    page = client.get("/?kind=workshop").get_data(as_text=True)
    assert "ワークショップ" in page and "Webinar EN" not in page
    page = client.get("/?pillar=reflect&language=en").get_data(as_text=True)
    assert "Webinar EN" in page and "ワークショップ" not in page
    assert client.get("/?kind=<script>").status_code == 200


def test_event_page_names_the_zone_and_gives_the_instant_for_the_browser(client):
    event = make_event(starts_at=NOW.replace(month=7, day=1, hour=12) )
    page = client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert "Tuesday 1 July 2025, 14:00–15:30 Central European Summer Time" in page
    assert 'datetime="2025-07-01T12:00:00Z"' in page
    assert event.join_url not in page


def test_public_calendar_files_carry_no_method_attendees_or_join_link(client):
    event = make_event()
    for path in (f"/events/{event.slug}.ics", "/programme.ics"):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/calendar")
        assert "BEGIN:VEVENT" in body
        for forbidden in ("METHOD", "ORGANIZER", "ATTENDEE", event.join_url):
            assert forbidden not in body


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["database"] == "ok"


def test_every_response_carries_security_headers(client):
    make_event()
    for path in ("/", "/events/climate-finance-101", "/nowhere", "/healthz"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"]


def test_pages_have_no_inline_scripts_or_styles(client):
    make_event()
    page = client.get("/events/climate-finance-101").get_data(as_text=True)
    assert "<script>" not in page and "style=" not in page


def test_a_control_character_in_a_url_is_a_404_not_a_database_error(client):
    make_event()
    for path in ("/events/a%00b", "/events/a%00b/registered", "/r/a%00b", "/events/x%1fy.ics"):
        assert client.get(path).status_code == 404, path
