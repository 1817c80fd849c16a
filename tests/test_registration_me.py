"""A person's page of all their sessions (/me/<token>), "Lost your link?", signing out of the
link everywhere and deleting all of one's data: on both databases."""

import re
from datetime import timedelta

import sqlalchemy as sa

from extensions import db
from notifications import claims
from notifications.dispatcher import dispatch
from notifications.models import Message, MessageKind
from registration import people, retention, tokens
from registration.models import Event, Person, Registration
from tests.conftest import CSRF_RE, NOW, make_event, make_registration, outbox, sign_up

AIKO = "aiko.tanaka@example.org"


def person_of(email=AIKO) -> Person:
    return db.session.scalar(sa.select(Person).where(Person.email_key == email.casefold()))


def me_path(person) -> str:
    return f"/me/{tokens.me_token(person)}"


def registration_of(event, email=AIKO) -> Registration:
    return db.session.scalar(sa.select(Registration).where(
        Registration.event_id == event.id, Registration.email_key == email.casefold()))


def link_emails() -> list[Message]:
    return db.session.scalars(sa.select(Message).where(Message.kind == MessageKind.MY_LINK)
                              .order_by(Message.id)).all()


def ask_for_link(client, email):
    """Fill in "Lost your link?" as a browser would; the POST's response."""
    token = CSRF_RE.search(client.get("/me").get_data(as_text=True)).group(1)
    return client.post("/me", data={"email": email, "csrf_token": token})


def text_of(mail) -> str:
    return next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()


def three_sessions(client):
    """Aiko signs up for two sessions and (with a seat taken) the waiting list of a third;
    someone else signs up too."""
    soon = make_event(slug="soon", title="Soon", starts_at=NOW + timedelta(days=3))
    later = make_event(slug="later", title="Later", starts_at=NOW + timedelta(days=40),
                       language="ja")
    full = make_event(slug="full", title="Full", capacity=1,
                      starts_at=NOW + timedelta(days=10))
    sign_up(client, full.slug, email="first@example.org")
    for event in (later, soon, full):
        assert sign_up(client, event.slug, email="Aiko.Tanaka@example.org").status_code == 303
    sign_up(client, soon.slug, email="other@example.org")
    return soon, later, full


# "Lost your link?"

def test_lost_link_answers_the_same_for_a_registered_and_an_unknown_address(client):
    event = make_event()
    sign_up(client, event.slug)
    registered = ask_for_link(client, "AIKO.TANAKA@example.org")
    assert len(link_emails()) == 1
    unknown = ask_for_link(client, "nobody@example.org")
    assert len(link_emails()) == 1

    assert (registered.status_code, registered.headers["Location"]) == (
        unknown.status_code, unknown.headers["Location"]) == (303, "/me/sent")
    assert registered.get_data() == unknown.get_data()
    pages = [client.get(response.headers["Location"]) for response in (registered, unknown)]
    assert [page.status_code for page in pages] == [200, 200]
    assert pages[0].get_data() == pages[1].get_data()
    [message] = link_emails()
    assert message.recipient == AIKO and message.ical_method is None
    assert message.expires_at == NOW + timedelta(hours=24)


def test_the_fourth_link_request_in_an_hour_queues_nothing(app, client):
    sign_up(client, make_event().slug)
    answers = {ask_for_link(client, AIKO).headers["Location"] for _ in range(4)}
    assert answers == {"/me/sent"}
    assert len(link_emails()) == 3
    app.config["CLOCK"] = lambda: NOW + timedelta(minutes=61)
    ask_for_link(client, AIKO)
    assert len(link_emails()) == 4


def test_a_bad_address_answers_422_with_its_reason_and_queues_nothing(client):
    sign_up(client, make_event().slug)
    for bad, reason in (("", "Enter your email address"),
                        ("aiko.example.org", "with an @"),
                        ("aiko@exa mple.org", "correct format")):
        response = ask_for_link(client, bad)
        assert response.status_code == 422, bad
        html = response.get_data(as_text=True)
        # GOV.UK's pattern: the error summary first, its link leading to the field.
        assert html.index('data-error-summary') < html.index("<h1")
        assert '<a href="#email">' in html and reason in html
    assert link_emails() == []


def test_the_lost_link_email_brings_a_link_that_opens_the_page(app, client):
    sign_up(client, make_event().slug)
    ask_for_link(client, AIKO)
    dispatch(NOW)
    mail = outbox(app)[-1]
    assert "Your sessions at" in mail["Subject"]
    path = re.search(r"http://forum\.example\.org(/me/[A-Za-z0-9_.-]+)", text_of(mail)).group(1)
    assert path == me_path(person_of())
    assert client.get(path).status_code == 200


def test_a_link_email_still_goes_after_its_registration_was_cancelled(client):
    event = make_event()
    sign_up(client, event.slug)
    ask_for_link(client, AIKO)
    registration = registration_of(event)
    registration.status = "cancelled"
    event.status = "cancelled"
    db.session.commit()
    [message] = link_emails()
    assert claims.skip_reason(message, NOW) is None
    db.session.delete(person_of())
    db.session.commit()
    assert claims.skip_reason(message, NOW) == "personal data deleted"


# Every email links to the page.

def test_every_email_carries_the_link_to_all_sessions(app, client):
    sign_up(client, make_event().slug)
    sign_up(client, make_event(slug="second", title="Second").slug)
    dispatch(NOW)
    mails = outbox(app)
    assert len(mails) == 2
    path = me_path(person_of())
    for mail in mails:
        assert f"http://forum.example.org{path}" in text_of(mail)
        html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
        assert f'href="http://forum.example.org{path}"' in html


def test_an_email_whose_person_is_missing_goes_without_that_link(app):
    from notifications import planner

    registration = make_registration(make_event())  # as rows were written before people
    planner.queue_signup(registration, NOW, is_repeat=False)
    db.session.commit()
    assert dispatch(NOW).sent == 1
    [mail] = outbox(app)
    assert "/me/" not in text_of(mail) and "/r/" in text_of(mail)


# The page.

def test_the_page_lists_current_registrations_across_sessions_upcoming_first(app, client):
    soon, later, full = three_sessions(client)
    past = make_event(slug="past", title="Past", starts_at=NOW - timedelta(days=20),
                      recording_url="https://video.example.org/r/9")
    make_registration(past, email=AIKO)
    gone = make_event(slug="gone", title="Gone")
    make_registration(gone, email=AIKO, status="cancelled", cancelled_at=NOW)
    db.session.commit()

    response = client.get(me_path(person_of()))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    titles = re.findall(r'<h3><a href="/events/([a-z-]+)"', page)
    assert titles == ["soon", "full", "later", "past"]
    assert "Gone" not in page and "other@example.org" not in page
    assert 'lang="ja">Later</a>' in page
    assert "Japan Standard Time" in page
    assert "You are number 1 on the waiting list." in page
    assert page.count("You have a seat.") == 2
    for seat in (soon, later):
        assert f"/r/{tokens.manage_token(registration_of(seat))}/invite.ics" in page
    assert f"/r/{tokens.manage_token(registration_of(full))}/invite.ics" not in page
    assert page.count(soon.join_url) == 2  # the two seats, not the waiting list
    assert "https://video.example.org/r/9" in page
    assert 'href="/"' in page and "Sign up for more sessions" in page


def test_the_page_starts_in_the_language_of_the_latest_registration(client):
    sign_up(client, make_event().slug, language="ja")
    page = client.get(me_path(person_of())).get_data(as_text=True)
    assert '<html lang="ja">' in page


def cancel_from_page(client, path, registration):
    page = client.get(path).get_data(as_text=True)
    confirm = f"{path}/cancel/{registration.id}"
    assert f'href="{confirm}"' in page
    asked = client.get(confirm)
    assert asked.headers["Cache-Control"] == "no-store"
    form = asked.get_data(as_text=True)
    assert f'action="{confirm}"' in form and f'href="{path}"' in form
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    return client.post(confirm, data={"csrf_token": csrf})


def test_cancelling_from_the_page_cancels_that_one_and_promotes_the_next(client):
    soon, later, full = three_sessions(client)
    path = me_path(person_of())
    holder = registration_of(full, "first@example.org")
    # The seat holder of the full session cancels from their own page: Aiko gets the seat.
    response = cancel_from_page(client, me_path(person_of("first@example.org")), holder)
    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"{me_path(person_of('first@example.org'))}?cancelled={holder.id}")
    assert "is cancelled" in client.get(response.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    assert registration_of(full, "first@example.org").status == "cancelled"
    assert registration_of(full).status == "confirmed"

    response = cancel_from_page(client, path, registration_of(soon))
    assert response.status_code == 303
    db.session.expire_all()
    assert [registration_of(e).status for e in (soon, later, full)] == [
        "cancelled", "confirmed", "confirmed"]
    assert registration_of(soon, "other@example.org").status == "confirmed"
    page = client.get(path).get_data(as_text=True)
    assert re.findall(r'<h3><a href="/events/([a-z-]+)"', page) == ["full", "later"]
    kinds = [m.kind for m in db.session.scalars(
        sa.select(Message).where(Message.registration_id == registration_of(soon).id))]
    assert "cancellation" in kinds
    # Pressing again changes nothing and sends nothing more.
    csrf = CSRF_RE.search(client.get(path).get_data(as_text=True)).group(1)
    again = client.post(f"{path}/cancel/{registration_of(soon).id}", data={"csrf_token": csrf})
    assert again.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.registration_id == registration_of(soon).id, Message.kind == "cancellation")) == 1


def test_nobody_cancels_another_persons_registration_through_their_own_link(client):
    soon, _later, _full = three_sessions(client)
    path = me_path(person_of())
    theirs = registration_of(soon, "other@example.org")
    csrf = CSRF_RE.search(client.get(path).get_data(as_text=True)).group(1)
    for attempt in (f"{path}/cancel/{theirs.id}", f"{path}/cancel/99999999999"):
        assert client.get(attempt).status_code == 404, attempt
        assert client.post(attempt, data={"csrf_token": csrf}).status_code == 404, attempt
    db.session.expire_all()
    assert registration_of(soon, "other@example.org").status == "confirmed"


def test_cancelling_needs_the_csrf_token(client):
    soon, _later, _full = three_sessions(client)
    registration = registration_of(soon)
    assert client.post(f"{me_path(person_of())}/cancel/{registration.id}").status_code == 400
    db.session.refresh(registration)
    assert registration.status == "confirmed"


def test_a_bad_or_revoked_link_answers_404(client):
    sign_up(client, make_event().slug)
    person = person_of()
    path = me_path(person)
    mac = tokens.split(tokens.me_token(person))[1]
    registration = registration_of(db.session.scalar(sa.select(Event)))
    for forged in ("not-a-token", f"{person.id + 1}.{mac}", f"99999999999.{mac}", mac,
                   f"{person.id}.{mac[:-1]}", tokens.manage_token(registration),
                   f"{person.id}.{tokens.split(tokens.manage_token(registration))[1]}"):
        assert client.get(f"/me/{forged}").status_code == 404, forged
    assert client.get(path).status_code == 200
    tokens.issue_token(person)
    db.session.commit()
    assert client.get(path).status_code == 404
    assert client.get(me_path(person)).status_code == 200


def test_signing_out_everywhere_revokes_the_link_and_emails_a_new_one(app, client):
    sign_up(client, make_event().slug)
    old = me_path(person_of())
    csrf = CSRF_RE.search(client.get(old).get_data(as_text=True)).group(1)
    response = client.post(f"{old}/sign-out", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert client.get(response.headers["Location"]).status_code == 200
    assert client.get(old).status_code == 404
    db.session.expire_all()
    new = me_path(person_of())
    assert new != old and client.get(new).status_code == 200
    [message] = link_emails()
    assert message.detail == {"signed_out": True}
    dispatch(NOW)
    body = text_of(outbox(app)[-1])
    assert f"http://forum.example.org{new}" in body and old not in body
    assert client.post(f"{old}/sign-out", data={"csrf_token": csrf}).status_code == 404


def test_signing_out_everywhere_also_ends_the_manage_links_of_earlier_emails(client):
    events = [make_event(), make_event(slug="second")]
    for event in events:
        sign_up(client, event.slug)
    manage_paths = [f"/r/{tokens.manage_token(registration_of(event))}" for event in events]
    assert all(client.get(path).status_code == 200 for path in manage_paths)
    old = me_path(person_of())
    csrf = CSRF_RE.search(client.get(old).get_data(as_text=True)).group(1)
    assert client.post(f"{old}/sign-out", data={"csrf_token": csrf}).status_code == 303
    # A manage page shows the current link to all one's sessions: an old one must open nothing.
    assert [client.get(path).status_code for path in manage_paths] == [404, 404]
    db.session.expire_all()
    page = client.get(me_path(person_of())).get_data(as_text=True)
    for event in events:
        assert f"/r/{tokens.manage_token(registration_of(event))}/invite.ics" in page


def test_a_sign_out_brings_its_new_link_when_the_hourly_allowance_is_used(client):
    sign_up(client, make_event().slug)
    for _ in range(people.LINK_EMAILS_PER_HOUR):
        ask_for_link(client, AIKO)
    assert len(link_emails()) == people.LINK_EMAILS_PER_HOUR
    old = me_path(person_of())
    csrf = CSRF_RE.search(client.get(old).get_data(as_text=True)).group(1)
    client.post(f"{old}/sign-out", data={"csrf_token": csrf})
    assert link_emails()[-1].detail == {"signed_out": True}


def test_cancelling_a_registration_leaves_the_link_email_asked_for(client):
    event = make_event()
    sign_up(client, event.slug)
    ask_for_link(client, AIKO)
    path = me_path(person_of())
    registration = registration_of(event)
    csrf = CSRF_RE.search(client.get(f"{path}/cancel/{registration.id}").get_data(
        as_text=True)).group(1)
    client.post(f"{path}/cancel/{registration.id}", data={"csrf_token": csrf})
    db.session.expire_all()
    assert registration_of(event).status == "cancelled"
    [message] = link_emails()
    assert message.status == "pending"


def test_a_person_row_lost_to_a_race_is_made_again_by_the_link_form(client):
    sign_up(client, make_event().slug)
    # As when a deletion of all their data raced a new sign-up and removed the row.
    db.session.execute(sa.delete(Person))
    db.session.commit()
    assert ask_for_link(client, AIKO).status_code == 303
    assert person_of() is not None
    assert len(link_emails()) == 1


def test_looking_changes_nothing(client):
    soon, _later, _full = three_sessions(client)
    path = me_path(person_of())
    before = db.session.scalar(sa.select(sa.func.count(Message.id)))
    for page in (path, f"{path}/cancel/{registration_of(soon).id}", f"{path}/delete", "/me",
                 "/me/sent"):
        assert client.get(page).status_code == 200, page
    db.session.expire_all()
    assert registration_of(soon).status == "confirmed"
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == before
    assert client.get(path).status_code == 200


# Deleting all of one's data.

def test_deleting_all_my_data_anonymises_every_registration_and_ends_the_link(app, client):
    soon, later, full = three_sessions(client)
    past = make_event(slug="past", title="Past", starts_at=NOW - timedelta(days=20))
    make_registration(past, email=AIKO)
    make_registration(make_event(slug="gone"), email=AIKO, status="cancelled",
                      cancelled_at=NOW)
    db.session.commit()
    path = me_path(person_of())
    confirm = client.get(f"{path}/delete")
    assert confirm.headers["Cache-Control"] == "no-store"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     confirm.get_data(as_text=True)).group(1)
    response = client.post(f"{path}/delete", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/deleted"

    db.session.expire_all()
    assert person_of() is None
    assert client.get(path).status_code == 404
    mine = db.session.scalars(sa.select(Registration).where(
        Registration.email_key.like("deleted:%")).order_by(Registration.id)).all()
    assert len(mine) == 5 and all(r.email == "" and r.anonymised_at for r in mine)
    statuses = {r.event.slug: r.status for r in mine}
    # Cancelled where the session was still to come; the past one stays as it was.
    assert statuses == {"soon": "cancelled", "later": "cancelled", "full": "cancelled",
                        "past": "confirmed", "gone": "cancelled"}
    assert registration_of(soon, "other@example.org").email == "other@example.org"
    assert person_of("other@example.org") is not None


def test_deleting_ones_last_registration_on_its_manage_page_deletes_the_person(client):
    event = make_event()
    sign_up(client, event.slug)
    sign_up(client, make_event(slug="second").slug)
    for registration in (registration_of(event),
                         registration_of(db.session.scalar(
                             sa.select(Event).where(Event.slug == "second")))):
        assert person_of() is not None
        retention.delete_my_data(registration, NOW)
        db.session.commit()
    assert person_of() is None


def test_the_purge_deletes_a_person_once_no_registration_keeps_their_data(client):
    old = make_event(slug="old", starts_at=NOW - timedelta(days=400))
    recent = make_event(slug="recent", starts_at=NOW - timedelta(days=10))
    for event in (old, recent):
        make_registration(event, email=AIKO)
    make_registration(old, email="ben@example.org")
    for email in (AIKO, "ben@example.org"):
        people.ensure(email, NOW)
    db.session.commit()
    retention.purge(NOW, retention_days=180)
    db.session.commit()
    assert person_of() is not None
    assert person_of("ben@example.org") is None


def test_the_link_form_is_rate_limited_per_ip_whatever_the_address(app_with):
    with app_with(RATELIMIT_ENABLED="true", RATELIMIT_MY_LINK_PER_IP="2 per hour") as app:
        client = app.test_client()
        statuses = [ask_for_link(client, f"someone.{n}@example.org").status_code
                    for n in range(3)]
        assert statuses == [303, 303, 429]


def test_two_sign_ups_with_one_address_make_one_person(client, monkeypatch):
    sign_up(client, make_event().slug)
    first = person_of()
    # The second sign-up looks before the first one's row is visible, as a concurrent one
    # would: its insert meets the unique key, and it takes the row the first one made.
    real_find, looked = people.find, []

    def find_too_early(email_key, **options):
        looked.append(email_key)
        return None if len(looked) == 1 else real_find(email_key, **options)

    monkeypatch.setattr(people, "find", find_too_early)
    assert sign_up(client, make_event(slug="second").slug).status_code == 303
    assert len(looked) == 2
    db.session.expire_all()
    assert db.session.scalars(sa.select(Person.id)).all() == [first.id]
    assert registration_of(db.session.scalar(sa.select(Event).where(Event.slug == "second")))


def test_the_console_names_a_link_email_in_the_events_timeline(admin):
    event = make_event()
    sign_up(admin, event.slug)
    ask_for_link(admin, AIKO)
    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    assert "link to all their sessions, asked for" in page
