"""The attendee's own page and cancelling: the link, the seat, the waiting list."""

import re
from datetime import timedelta

import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from registration import services, tokens
from registration.models import Event, Registration
from tests.conftest import NOW, make_event, sign_up


def registration_for(email):
    return db.session.scalar(sa.select(Registration).where(Registration.email == email))


def manage_path(registration):
    return f"/r/{tokens.manage_token(registration)}"


def test_manage_token_is_long_and_only_its_digest_is_stored(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    token = tokens.manage_token(registration)
    assert len(token) >= 22  # 128 bits in base64url
    dump = "|".join(str(v) for v in db.session.execute(sa.select(Registration.__table__)).one())
    assert token not in dump
    assert services.find_by_token(token).id == registration.id


def test_manage_page_shows_status_time_in_own_zone_and_join_link(client):
    event = make_event()
    sign_up(client, event.slug)
    response = client.get(manage_path(registration_for("aiko.tanaka@example.org")))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "confirmed" in page and "Japan Standard Time" in page
    assert event.join_url in page
    assert "Cancel my registration" in page
    assert response.headers["Cache-Control"] == "no-store"


def test_waiting_list_page_has_no_join_link(client):
    event = make_event(capacity=0)
    sign_up(client, event.slug)
    page = client.get(manage_path(registration_for("aiko.tanaka@example.org"))).get_data(
        as_text=True)
    assert "waiting list" in page and event.join_url not in page


def test_unknown_or_revoked_token_answers_404(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    old = manage_path(registration)
    assert client.get("/r/not-a-real-token").status_code == 404
    tokens.issue_token(registration)
    db.session.commit()
    assert client.get(old).status_code == 404
    assert client.get(manage_path(registration)).status_code == 200


def test_get_never_changes_state(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    path = manage_path(registration)
    assert client.get(path + "/cancel").status_code == 405
    client.get(path)
    db.session.refresh(registration)
    assert registration.status == "confirmed"


def test_cancel_needs_csrf_token(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    assert client.post(manage_path(registration) + "/cancel").status_code == 400
    db.session.refresh(registration)
    assert registration.status == "confirmed"


def cancel_via_page(client, registration):
    """Press the cancel button as a browser would: read the page's token, then POST."""
    import re

    page = client.get(manage_path(registration)).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(manage_path(registration) + "/cancel", data={"csrf_token": csrf})


def test_cancel_frees_the_seat_and_promotes_the_first_on_the_waiting_list(client):
    event = make_event(capacity=1)
    for email in ("first@example.org", "second@example.org", "third@example.org"):
        sign_up(client, event.slug, email=email)
    first = registration_for("first@example.org")
    response = cancel_via_page(client, first)
    assert response.status_code == 303
    statuses = {r.email: r.status for r in db.session.scalars(sa.select(Registration))}
    assert statuses == {"first@example.org": "cancelled", "second@example.org": "confirmed",
                        "third@example.org": "waitlisted"}
    db.session.refresh(event)
    assert event.confirmed_count == 1
    kinds = [(m.recipient, m.kind, m.ical_method) for m in db.session.scalars(
        sa.select(Message).where(Message.kind != "reminder").order_by(Message.id))][3:]
    assert kinds == [("first@example.org", "cancellation", "CANCEL"),
                     ("second@example.org", "promotion", "REQUEST")]
    first_again = registration_for("first@example.org")
    assert first_again.ical_sequence == 1
    assert "cancelled" in client.get(manage_path(first)).get_data(as_text=True)


def test_cancelling_twice_sends_one_cancellation(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    cancel_via_page(client, registration)
    assert services.cancel(registration, registration.cancelled_at) is False
    cancellations = db.session.scalars(
        sa.select(Message).where(Message.kind == "cancellation")).all()
    assert len(cancellations) == 1


def test_cancelled_person_can_sign_up_again(client):
    event = make_event()
    sign_up(client, event.slug)
    cancel_via_page(client, registration_for("aiko.tanaka@example.org"))
    sign_up(client, event.slug)
    statuses = sorted(r.status for r in db.session.scalars(sa.select(Registration)))
    assert statuses == ["cancelled", "confirmed"]


def test_cancelling_works_over_https_without_a_referer(app_with):
    with app_with(BASE_URL="https://forum.example.org") as app:
        client = app.test_client()
        https = {"base_url": "https://forum.example.org"}
        event = make_event()
        page = client.get(f"/events/{event.slug}", **https).get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        from tests.conftest import form_data

        client.post(f"/events/{event.slug}/register", data=form_data(csrf_token=token), **https)
        registration = registration_for("aiko.tanaka@example.org")
        path = manage_path(registration)
        manage = client.get(path, **https)
        assert manage.headers["Referrer-Policy"] == "same-origin"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                         manage.get_data(as_text=True)).group(1)
        response = client.post(path + "/cancel", data={"csrf_token": csrf}, **https)
        assert response.status_code == 303
        db.session.refresh(registration)
        assert registration.status == "cancelled"


def test_cancelling_after_the_session_ended_answers_410_and_changes_nothing(app, client):
    event = make_event(starts_at=NOW + timedelta(hours=1), capacity=5,
                       recording_url="https://video.example.org/r/1")
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    path = manage_path(registration)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     client.get(path).get_data(as_text=True)).group(1)
    planned = [(m.kind, m.status) for m in db.session.scalars(
        sa.select(Message).order_by(Message.id))]
    assert ("follow_up", "pending") in planned
    after_end = event.ends_at + timedelta(minutes=5)
    app.config["CLOCK"] = lambda: after_end

    assert "Cancel my registration" not in client.get(path).get_data(as_text=True)
    response = client.post(path + "/cancel", data={"csrf_token": csrf})

    assert response.status_code == 410
    assert "has ended" in response.get_data(as_text=True)
    db.session.expire_all()
    assert registration_for("aiko.tanaka@example.org").status == "confirmed"
    assert db.session.get(Event, event.id).confirmed_count == 1
    assert [(m.kind, m.status) for m in db.session.scalars(
        sa.select(Message).order_by(Message.id))] == planned
