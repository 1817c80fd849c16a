"""Parts of the public pages rendered once (registration/fragments.py): a change to a session
shows at the next request, in this process and in another one on the same database; each
language keeps its own; nothing of a visitor's is kept; and a page served from the cache is
byte for byte the page rendered without it."""

import re
from datetime import timedelta

import pytest

from extensions import db
from registration import changes
from registration.models import Event
from tests.conftest import NOW, base_config, make_app, make_event, sign_up

TOKEN_RE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+')


def html(client, path: str, **headers) -> str:
    """The page, its CSRF token (new for every visitor) blanked out."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, path
    return TOKEN_RE.sub(r"\1…", response.get_data(as_text=True))


def cached_keys(app) -> list[tuple]:
    return list(app.extensions["fragments"].entries)


@pytest.fixture
def programme(app):
    """Three sessions: one with a cap, one in Japanese held in Tokyo, one past."""
    make_event(slug="capped", title="Capped <session>", capacity=3,
               description="Water & heat.")
    make_event(slug="tokyo", title="東京のセッション", language="ja", timezone="Asia/Tokyo",
               starts_at=NOW + timedelta(days=40))
    make_event(slug="past", title="Past session", starts_at=NOW - timedelta(days=10),
               recording_url="https://video.example.org/past")
    return ["capped", "tokyo", "past"]


PAGES = ["/events/capped", "/events/tokyo", "/events/past", "/", "/?kind=webinar",
         "/signup?event=capped&event=tokyo", "/signup?event=capped&event=gone"]


def test_pages_from_the_cache_are_byte_identical_to_pages_rendered_without_it(
        app, client, programme, database_url, tmp_path):
    uncached = make_app({**base_config(database_url, tmp_path), "FRAGMENT_CACHE_SIZE": 0})
    for language in ("en", "ja"):
        header = {"Accept-Language": language}
        for path in PAGES:
            first = html(client, path, **header)
            again = html(client, path, **header)  # from the cache
            with uncached.app_context():
                plain = html(uncached.test_client(), path, **header)
                db.session.remove()
                db.engine.dispose()
            assert again == first == plain, (language, path)
    assert cached_keys(app), "nothing was cached"
    assert not uncached.extensions["fragments"].entries


def test_a_change_through_the_service_shows_at_the_next_request(app, client, programme):
    html(client, "/events/capped")
    html(client, "/")
    event = db.session.scalar(db.select(Event).filter_by(slug="capped"))
    # The same clock as when it was made: updated_at does not move, the page must still change.
    changes.change_event(event, {"title": "Renamed session", "starts_at": NOW + timedelta(days=31),
                                 "ends_at": NOW + timedelta(days=31, hours=2)}, NOW)
    db.session.commit()
    for path in ("/events/capped", "/", "/events/tokyo", "/signup?event=capped"):
        page = html(client, path)
        assert "Renamed session" in page and "Capped &lt;session&gt;" not in page, path
    assert "Monday 21 July 2025, 11:00–13:00" in html(client, "/events/capped")


def test_a_change_made_by_another_process_shows_at_the_next_request(
        app, client, programme, database_url, tmp_path):
    assert "Water &amp; heat." in html(client, "/events/capped")
    assert "Cancelled" not in html(client, "/")
    # Another worker (or host) on the same database, with a cache of its own.
    other = make_app(base_config(database_url, tmp_path))
    with other.app_context():
        event = db.session.scalar(db.select(Event).filter_by(slug="capped"))
        changes.change_event(event, {"description": "Water, heat and shade.",
                                     "status": "cancelled"}, NOW)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    db.session.expire_all()
    page = html(client, "/events/capped")
    assert "Water, heat and shade." in page and "Water &amp; heat." not in page
    assert "This session was cancelled" in page
    assert "<strong>Cancelled</strong>" in html(client, "/")


def test_seats_left_are_live_though_the_details_come_from_the_cache(app, client, programme):
    assert "3 seats left." in html(client, "/events/capped")
    assert sign_up(client, "capped").status_code == 303
    assert "2 seats left." in html(client, "/events/capped")
    for n in range(2):
        sign_up(client, "capped", email=f"person{n}@example.org")
    assert "Fully booked: waiting list open" in html(client, "/")
    assert "Fully booked: you will join the waiting list." in html(client, "/signup?event=capped")


def test_japanese_and_english_visitors_each_get_their_own_fragments(app, client, programme):
    for path in ("/events/capped", "/", "/signup?event=capped&event=tokyo"):
        english = html(client, path, **{"Accept-Language": "en"})
        japanese = html(client, path, **{"Accept-Language": "ja"})
        english_again = html(client, path, **{"Accept-Language": "en"})
        assert english_again == english
        assert "Full name" in english or path == "/"
        assert "氏名" not in english and "年" not in re.sub(r"東京のセッション", "", english)
        assert 'class="when" lang="ja"' in japanese and 'class="when" lang="en"' not in japanese
        assert "Full name" not in japanese and "Central European" not in japanese
    assert {key[1] for key in cached_keys(app)} == {"en", "ja"}


def test_nothing_a_visitor_typed_or_had_remembered_is_kept(app, client, programme):
    response = sign_up(client, "capped", name="Ada Typed", email="not-an-address",
                       organisation="Secret Org")
    assert response.status_code == 422
    assert sign_up(client, "capped", name="Ada Remembered", email="ada@example.org",
                   remember="y").status_code == 303
    page = html(client, "/events/capped")
    assert "Ada Remembered" in page  # this device's own details, filled in
    kept = " ".join(str(html) for html in app.extensions["fragments"].entries.values())
    for typed in ("Ada Typed", "not-an-address", "Secret Org", "Ada Remembered",
                  "ada@example.org", "csrf_token"):
        assert typed not in kept
    # Another visitor, on a blank form, sees none of it.
    stranger = app.test_client()
    page = html(stranger, "/events/capped")
    assert "Ada Remembered" not in page and "Ada Typed" not in page and "Secret Org" not in page


def test_the_cache_keeps_at_most_its_size_and_drops_the_least_used(app_with):
    with app_with(FRAGMENT_CACHE_SIZE=3) as app:
        for n in range(6):
            make_event(slug=f"session-{n}", title=f"Session {n}",
                       starts_at=NOW + timedelta(days=20 + n))
        client = app.test_client()
        page = html(client, "/")
        assert len(cached_keys(app)) == 3
        # What was rendered last stays: the last session's entry and time.
        kept = " ".join(app.extensions["fragments"].entries.values())
        assert "Session 5" in kept and "Session 0" not in kept
        assert html(client, "/") == page


def test_a_site_mounted_under_a_path_gets_its_own_addresses(app, client, programme):
    at_root = html(client, "/events/capped")
    mounted = client.get("/events/capped", base_url="http://localhost/forum")
    page = TOKEN_RE.sub(r"\1…", mounted.get_data(as_text=True))
    assert 'href="/forum/privacy"' in page and 'action="/forum/signup"' in page
    assert 'href="/forum/static/css/site.css"' in page
    assert 'href="/forum/' not in at_root
    assert html(client, "/events/capped") == at_root


def test_nothing_is_kept_while_templates_reload_when_edited(app_with):
    with app_with(TEMPLATES_AUTO_RELOAD=True) as app:
        make_event(slug="capped", title="Capped")
        client = app.test_client()
        html(client, "/events/capped")
        assert cached_keys(app) == []
