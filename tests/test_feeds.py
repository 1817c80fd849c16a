"""The public calendar files people subscribe to: refresh hints, validators and 304s, cancelled
sessions, stable random UIDs, and the subscription links on the event page."""

import uuid
from datetime import timedelta
from html import unescape
from urllib.parse import quote

import icalendar
import pytest
import sqlalchemy as sa
import vobject
from werkzeug.http import http_date, parse_date

from extensions import db
from registration import changes
from registration.models import Event
from registration.programme import apply_programme, parse_programme
from tests.caldav import RadicaleServer
from tests.conftest import NOW, make_event

PROGRAMME = "/programme.ics"
SESSION = "/events/climate-finance-101.ics"


def change(event, now=NOW + timedelta(hours=1), **fields):
    changes.change_event(event, fields, now)
    db.session.commit()


def test_the_programme_asks_subscribers_to_refresh_every_six_hours(client):
    make_event()
    body = client.get(PROGRAMME).get_data()
    lines = body.decode().split("\r\n")
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT6H" in lines
    assert "X-PUBLISHED-TTL:PT6H" in lines
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar.refresh_interval == timedelta(hours=6)
    assert calendar["X-PUBLISHED-TTL"].to_ical() == b"PT6H"
    parsed = vobject.readOne(body.decode())
    assert parsed.contents["refresh-interval"][0].value == "PT6H"
    assert parsed.contents["refresh-interval"][0].params == {"VALUE": ["DURATION"]}
    assert parsed.contents["x-published-ttl"][0].value == "PT6H"
    # A single session's file is a download, not a subscription.
    assert b"REFRESH-INTERVAL" not in client.get(SESSION).get_data()


def test_calendar_files_carry_validators_and_a_public_cache_policy(client):
    make_event()
    make_event(slug="urban-heat", updated_at=NOW + timedelta(minutes=5))
    for path, newest in ((PROGRAMME, NOW + timedelta(minutes=5)), (SESSION, NOW)):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert response.headers["ETag"].startswith('"') and len(response.headers["ETag"]) > 40
        assert response.headers["Last-Modified"] == http_date(newest)
        assert response.headers["Cache-Control"] == "public, max-age=3600"
        assert {"Accept-Language", "Cookie"} <= set(response.vary)


def test_a_matching_etag_or_a_date_at_or_after_last_modified_answers_304(client):
    make_event()
    for path in (PROGRAMME, SESSION):
        first = client.get(path)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        later = http_date(parse_date(modified) + timedelta(hours=1))
        for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified},
                        {"If-Modified-Since": later}):
            response = client.get(path, headers=headers)
            assert response.status_code == 304, (path, headers)
            assert response.get_data() == b""
            assert response.headers["ETag"] == etag
        earlier = http_date(parse_date(modified) - timedelta(seconds=1))
        for headers in ({"If-None-Match": '"something-else"'}, {"If-Modified-Since": earlier},
                        # If-None-Match decides when both are sent (RFC 9110 13.2.2).
                        {"If-None-Match": '"something-else"', "If-Modified-Since": later}):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, headers)
            assert response.get_data() == first.get_data()


def test_a_change_to_a_session_answers_the_old_validators_with_a_fresh_body(client):
    event = make_event()
    make_event(slug="urban-heat", title="Urban heat")
    before = {path: client.get(path) for path in (PROGRAMME, SESSION)}
    change(event, title="Climate finance 102")
    for path, old in before.items():
        for headers in ({"If-None-Match": old.headers["ETag"]},
                        {"If-Modified-Since": old.headers["Last-Modified"]}):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, headers)
            assert "SUMMARY:Climate finance 102" in response.get_data(as_text=True)
            assert response.headers["ETag"] != old.headers["ETag"]
            assert response.headers["Last-Modified"] == http_date(NOW + timedelta(hours=1))


def test_a_new_session_changes_the_programme(client):
    make_event()
    old = client.get(PROGRAMME)
    make_event(slug="urban-heat", title="Urban heat", updated_at=NOW + timedelta(hours=2))
    response = client.get(PROGRAMME, headers={"If-None-Match": old.headers["ETag"]})
    assert response.status_code == 200
    assert "SUMMARY:Urban heat" in response.get_data(as_text=True)


def _vevents(body: bytes) -> dict:
    return {str(v["UID"]): v for v in icalendar.Calendar.from_ical(body).walk("VEVENT")}


def test_a_cancelled_session_stays_in_the_feed_marked_and_titled_so(client):
    event = make_event()
    make_event(slug="urban-heat", title="Urban heat")
    change(event, status="cancelled")
    body = client.get(PROGRAMME).get_data()
    vevents = {str(v["SUMMARY"]): str(v["STATUS"]) for v in _vevents(body).values()}
    assert vevents == {"Cancelled: Climate finance 101": "CANCELLED", "Urban heat": "CONFIRMED"}
    parsed = vobject.readOne(body.decode())
    assert sorted(v.summary.value for v in parsed.contents["vevent"]) == [
        "Cancelled: Climate finance 101", "Urban heat"]
    session = vobject.readOne(client.get(SESSION).get_data(as_text=True)).vevent
    assert (session.summary.value, session.status.value) == (
        "Cancelled: Climate finance 101", "CANCELLED")


def test_the_feed_follows_the_page_language_rules(client):
    make_event(status="cancelled")
    english = client.get(PROGRAMME)
    for headers, path in (({}, PROGRAMME + "?lang=ja"),
                          ({"Accept-Language": "ja-JP, en;q=0.8"}, PROGRAMME),
                          ({}, SESSION + "?lang=ja")):
        response = client.get(path, headers=headers)
        [vevent] = _vevents(response.get_data()).values()
        assert str(vevent["SUMMARY"]) == "中止: Climate finance 101", (path, headers)
        assert vevent["STATUS"] == "CANCELLED"
        # A subscription's ?lang= is for that file: no cookie changes the device's pages.
        assert "Set-Cookie" not in response.headers
    japanese = client.get(PROGRAMME + "?lang=ja")
    assert japanese.headers["ETag"] != english.headers["ETag"]
    assert client.get(PROGRAMME, headers={"If-None-Match": english.headers["ETag"],
                                          "Accept-Language": "ja"}).status_code == 200


def test_public_uids_are_the_stored_random_uuid_and_survive_changes(client):
    event = make_event()
    other = make_event(slug="urban-heat")
    stored = {event.public_uid, other.public_uid}
    assert all(uuid.UUID(value).version == 4 for value in stored) and len(stored) == 2
    uids = set(_vevents(client.get(PROGRAMME).get_data()))
    assert uids == {f"{value}@forum-signup" for value in stored}
    assert not any(uid.startswith("event-") or uid.split("@")[0].isdigit() for uid in uids)
    [session_uid] = _vevents(client.get(SESSION).get_data())
    assert session_uid == f"{event.public_uid}@forum-signup"
    change(event, starts_at=event.starts_at + timedelta(days=1),
           ends_at=event.ends_at + timedelta(days=1))
    change(event, status="cancelled", now=NOW + timedelta(hours=2))
    assert set(_vevents(client.get(PROGRAMME).get_data())) == uids


def test_events_imported_from_a_programme_file_get_their_own_public_uids(app):
    rows, problems = parse_programme(b"slug,title,starts_at,ends_at\n"
                                     b"heat-plans,Heat plans,2026-07-07T14:00,2026-07-07T15:00\n"
                                     b"urban-heat,Urban heat,2026-07-08T14:00,2026-07-08T15:00\n")
    assert problems == []
    apply_programme(rows, NOW)
    db.session.commit()
    uids = db.session.scalars(sa.select(Event.public_uid)).all()
    assert len(set(uids)) == 2 and all(uuid.UUID(value).version == 4 for value in uids)


def test_the_same_row_made_again_gets_another_uid_as_another_installation_would(client):
    first = make_event()
    row_id, old_uid = first.id, first.public_uid
    db.session.execute(sa.delete(Event).where(Event.id == row_id))
    db.session.commit()
    again = make_event(id=row_id)
    assert again.id == row_id and again.public_uid != old_uid
    [uid] = _vevents(client.get(SESSION).get_data())
    assert uid == f"{again.public_uid}@forum-signup" and old_uid not in uid


def test_the_event_page_offers_the_webcal_subscription_and_googles_add_by_url(client):
    make_event()
    for lang in ("en", "ja"):
        page = unescape(client.get(f"/events/climate-finance-101?lang={lang}")
                        .get_data(as_text=True))
        webcal = f"webcal://forum.example.org/programme.ics?lang={lang}"
        assert f'href="{webcal}"' in page
        google = "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe="")
        assert f'href="{google}"' in page
        assert "cid=webcal%3A%2F%2Fforum.example.org%2Fprogramme.ics%3Flang%3D" in page


@pytest.fixture(scope="module")
def radicale(tmp_path_factory):
    server = RadicaleServer(tmp_path_factory.mktemp("radicale")).start()
    yield server
    server.stop()


def test_a_caldav_server_holding_the_subscription_keeps_one_entry_per_session(client, radicale):
    # A subscribing app stores the feed it fetched; Radicale stores an uploaded calendar one
    # item per UID. Refetched after a change, the same items change: none added, none lost.
    event = make_event()
    make_event(slug="urban-heat", title="Urban heat")
    session = radicale.session()
    collection = f"{radicale.url}/{radicale.user}/programme-{uuid.uuid4().hex[:12]}/"

    def stored_after_upload():
        response = session.put(collection, data=client.get(PROGRAMME).get_data(),
                               headers={"Content-Type": "text/calendar; charset=utf-8"})
        assert response.status_code in (201, 204), (response.status_code, response.text)
        stored = vobject.readOne(session.get(collection).text).contents["vevent"]
        return {v.uid.value: (v.summary.value, v.status.value, v.dtstart.value) for v in stored}

    before = stored_after_upload()
    assert len(before) == 2
    new_start = event.starts_at + timedelta(days=1)
    change(event, starts_at=new_start, ends_at=new_start + timedelta(hours=1))
    change(event, status="cancelled", now=NOW + timedelta(hours=2))
    after = stored_after_upload()
    assert after.keys() == before.keys()
    assert after[f"{event.public_uid}@forum-signup"] == (
        "Cancelled: Climate finance 101", "CANCELLED", new_start)
