"""The attendee's own page and cancelling: the link, the seat, the waiting list."""

import hashlib
import hmac
import re
from base64 import urlsafe_b64encode
from datetime import timedelta

import sqlalchemy as sa

from extensions import db
from notifications import planner
from notifications.dispatcher import dispatch
from notifications.models import Message
from registration import services, tokens
from registration.models import Event, Registration
from tests.conftest import NOW, make_event, make_registration, outbox, sign_up


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
    registration = registration_for("aiko.tanaka@example.org")
    response = client.get(manage_path(registration))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "confirmed" in page and "Japan Standard Time" in page
    assert event.join_url in page
    assert "Cancel my place" in page and f'href="{manage_path(registration)}/cancel"' in page
    assert f'href="{manage_path(registration)}/invite.ics"' in page
    assert response.headers["Cache-Control"] == "no-store"


def test_waiting_list_page_has_no_join_link(client):
    event = make_event(capacity=0)
    sign_up(client, event.slug)
    page = client.get(manage_path(registration_for("aiko.tanaka@example.org"))).get_data(
        as_text=True)
    assert "waiting list" in page and event.join_url not in page
    assert "Leave the waiting list" in page and "invite.ics" not in page


def test_unknown_or_revoked_token_answers_404(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    old = manage_path(registration)
    assert client.get("/r/not-a-real-token").status_code == 404
    mac = tokens.split(tokens.manage_token(registration))[1]
    for forged in (f"{registration.id + 1}.{mac}", f"99999999999.{mac}", f".{mac}",
                   f"x.{mac}", f"{registration.id}.{mac[:-1]}"):
        assert client.get(f"/r/{forged}").status_code == 404, forged
    tokens.issue_token(registration)
    db.session.commit()
    assert client.get(old).status_code == 404
    assert client.get(manage_path(registration)).status_code == 200


def test_get_never_changes_state(client):
    event = make_event(capacity=1)
    sign_up(client, event.slug)
    sign_up(client, event.slug, email="next@example.org")
    registration = registration_for("aiko.tanaka@example.org")
    path = manage_path(registration)
    before = db.session.scalar(sa.select(sa.func.count(Message.id)))
    for page in (path, path + "/cancel", path + "/cancelled", path + "/invite.ics",
                 path + "/delete"):
        assert client.get(page).status_code in (200, 303), page
    db.session.expire_all()
    assert registration_for("aiko.tanaka@example.org").status == "confirmed"
    assert registration_for("next@example.org").status == "waitlisted"
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == before


def test_cancel_needs_csrf_token(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    assert client.post(manage_path(registration) + "/cancel").status_code == 400
    db.session.refresh(registration)
    assert registration.status == "confirmed"


def cancel_via_page(client, registration):
    """Cancel as a browser would: follow the manage page's link to the confirmation page,
    read its form's token, then press its button (a POST)."""
    manage = client.get(manage_path(registration)).get_data(as_text=True)
    confirm = re.search(r'<a class="button danger" href="([^"]+)"', manage).group(1)
    page = client.get(confirm).get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(form, data={"csrf_token": csrf})


def test_cancel_frees_the_seat_and_promotes_the_first_on_the_waiting_list(client):
    event = make_event(capacity=1)
    for email in ("first@example.org", "second@example.org", "third@example.org"):
        sign_up(client, event.slug, email=email)
    first = registration_for("first@example.org")
    response = cancel_via_page(client, first)
    assert response.status_code == 303
    assert response.headers["Location"] == manage_path(first) + "/cancelled"
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
        asked = client.get(path + "/cancel", **https)
        assert asked.headers["Referrer-Policy"] == "same-origin"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                         asked.get_data(as_text=True)).group(1)
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
                     client.get(path + "/cancel").get_data(as_text=True)).group(1)
    planned = [(m.kind, m.status) for m in db.session.scalars(
        sa.select(Message).order_by(Message.id))]
    assert ("follow_up", "pending") in planned
    after_end = event.ends_at + timedelta(minutes=5)
    app.config["CLOCK"] = lambda: after_end

    assert "Cancel my place" not in client.get(path).get_data(as_text=True)
    asked = client.get(path + "/cancel")
    assert asked.status_code == 410 and "has ended" in asked.get_data(as_text=True)
    response = client.post(path + "/cancel", data={"csrf_token": csrf})

    assert response.status_code == 410
    assert "has ended" in response.get_data(as_text=True)
    db.session.expire_all()
    assert registration_for("aiko.tanaka@example.org").status == "confirmed"
    assert db.session.get(Event, event.id).confirmed_count == 1
    assert [(m.kind, m.status) for m in db.session.scalars(
        sa.select(Message).order_by(Message.id))] == planned


def link_made_before_links_carried_the_id(key, registration):
    """A manage link as emails carried them before: the bare MAC of the nonce under the key."""
    mac = hmac.new(key.encode(), b"manage-link:" + registration.token_nonce.encode(),
                   hashlib.sha256).digest()
    return "/r/" + urlsafe_b64encode(mac).rstrip(b"=").decode()


def link_in_the_email(app):
    [mail] = outbox(app)
    body = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    return re.search(r"http://forum\.example\.org(/r/[A-Za-z0-9_.-]+)", body).group(1)


def registered_under(app_with, key):
    """A registration made while SECRET_KEY was `key`, its confirmation sent; its id and the
    manage links the registrant may hold (the email's, and one of the bare-MAC format)."""
    with app_with(SECRET_KEY=key) as app:
        registration = make_registration(make_event())
        planner.queue_signup(registration, NOW, is_repeat=False)
        db.session.commit()
        dispatch(NOW)
        links = [link_in_the_email(app), link_made_before_links_carried_the_id(key, registration)]
        return registration.id, links


def status_of(app_with, links, **keys):
    with app_with(**keys) as app:
        client = app.test_client()
        return [client.get(link).status_code for link in links]


def test_links_sent_before_a_key_rotation_work_while_the_old_key_is_a_fallback(app_with):
    _, sent_before = registered_under(app_with, "old-key")

    assert status_of(app_with, sent_before, SECRET_KEY="new-key",
                     SECRET_KEY_FALLBACKS="older-key, old-key") == [200, 200]
    assert status_of(app_with, sent_before, SECRET_KEY="new-key",
                     SECRET_KEY_FALLBACKS="older-key") == [404, 404]


def test_an_email_sent_after_a_key_rotation_carries_a_link_that_works(app_with, tmp_path):
    registration_id, sent_before = registered_under(app_with, "old-key")
    rotated = {"SECRET_KEY": "new-key", "SECRET_KEY_FALLBACKS": "old-key",
               "MAIL_OUTBOX_DIR": str(tmp_path / "after")}
    with app_with(**rotated) as app:
        registration = db.session.get(Registration, registration_id)
        planner.queue_signup(registration, NOW + timedelta(minutes=1))
        db.session.commit()
        dispatch(NOW + timedelta(minutes=1))
        sent_after = link_in_the_email(app)

    assert status_of(app_with, [sent_after], **rotated) == [200]
    # Made with the new key, it outlives the old one; the links made with that key do not.
    assert status_of(app_with, [sent_after, *sent_before], SECRET_KEY="new-key") == [
        200, 404, 404]
