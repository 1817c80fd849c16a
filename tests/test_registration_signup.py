"""Signing up on the web form: what is stored, what is queued, and what is refused."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from registration import services
from registration.models import Event, Registration
from tests.conftest import NOW, csrf_token, form_data, make_event, sign_up


def registrations():
    return db.session.scalars(sa.select(Registration).order_by(Registration.id)).all()


def messages():
    """The outbox rows but reminders (which have tests of their own)."""
    return db.session.scalars(
        sa.select(Message).where(Message.kind != "reminder").order_by(Message.id)
    ).all()


def test_valid_sign_up_redirects_to_thank_you_and_queues_confirmation(client):
    event = make_event()
    response = sign_up(client, event.slug)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/events/{event.slug}/registered")
    [registration] = registrations()
    assert registration.status == "confirmed"
    assert registration.email == "aiko.tanaka@example.org"
    assert registration.timezone == "Asia/Tokyo"
    assert registration.consent_at == NOW
    assert registration.consent_version == "2025-06"
    [message] = messages()
    assert (message.kind, message.status, message.ical_method) == ("confirmation", "pending",
                                                                   "REQUEST")
    assert message.due_at == NOW and message.expires_at == event.ends_at
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200
    assert "Check your email" in thanks.get_data(as_text=True)


def test_repeat_sign_up_creates_nothing_answers_the_same_and_resends_confirmation(client):
    event = make_event()
    first = sign_up(client, event.slug)
    again = sign_up(client, event.slug, email="  AIKO.Tanaka@EXAMPLE.org ", name="Aiko T.")
    assert (again.status_code, again.headers["Location"]) == (
        first.status_code, first.headers["Location"])
    [registration] = registrations()
    assert registration.name == "Aiko Tanaka"
    assert [m.kind for m in messages()] == ["confirmation", "confirmation"]


def test_confirmation_resent_at_most_three_times_a_day(client):
    event = make_event()
    for _ in range(5):
        assert sign_up(client, event.slug).status_code == 303
    assert len(registrations()) == 1
    assert len(messages()) == 3


def test_confirmation_resend_allowance_renews_after_a_day(app, client):
    event = make_event()
    for _ in range(3):
        sign_up(client, event.slug)
    app.config["CLOCK"] = lambda: NOW + timedelta(days=1, minutes=1)
    sign_up(client, event.slug)
    assert len(messages()) == 4


def test_filled_honeypot_answers_the_same_and_stores_nothing(client):
    event = make_event()
    response = sign_up(client, event.slug, website="http://spam.example.com")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/events/{event.slug}/registered")
    assert registrations() == [] and messages() == []


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "", "Enter your full name"),
        ("email", "not-an-address", "Enter an email address with an @, like name@example.com"),
        ("email", "anna@exa mple.org",
         "Enter an email address in the correct format, like name@example.com"),
        ("email", "", "Enter your email address"),
        ("affiliation", "pirates", "Select the type of your organisation"),
        ("country", "XX", "Select your country"),
        ("timezone", "Mars/Olympus_Mons", "Select the time zone for your emails from the list"),
        ("timezone", "", "Select the time zone for your emails from the list"),
        ("language", "fr", "Select the language for your emails"),
        ("consent", "", "Confirm that you have read and accept the privacy notice"),
        ("name", "Aiko\r\nBcc: victim@example.com",
         "Full name must not contain line breaks or control characters"),
        ("organisation", "City\x00Hall",
         "Organisation must not contain line breaks or control characters"),
        ("name", "x" * 201, "Full name must be 200 characters or fewer"),
    ],
)
def test_invalid_field_re_renders_form_with_message_and_stores_nothing(client, field, value,
                                                                        message):
    event = make_event()
    response = sign_up(client, event.slug, **{field: value})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert f'id="{field}-error"' in page
    assert 'value="City of Yokohama"' in page or field == "organisation"
    assert registrations() == [] and messages() == []


@pytest.mark.parametrize("address", ["anna@exa mple.org", "anna@@example.org", "anna@.org",
                                     "an na@example.org"])
def test_the_address_checkers_own_words_never_reach_the_page(client, address):
    event = make_event()
    page = sign_up(client, event.slug, email=address).get_data(as_text=True)
    assert "Enter an email address in the correct format, like name@example.com" in page
    for words in ("@-sign", "invalid characters", "The email address"):
        assert words not in page


def test_the_organisation_is_optional(client):
    event = make_event()
    assert sign_up(client, event.slug, organisation="  ").status_code == 303
    assert registrations()[0].organisation == ""


@pytest.mark.parametrize("field, value", [
    ("name", "Aiko \u202eamakaN"),  # reads "Aiko Nakama" backwards, the programme refuses it
    ("organisation", "City\u2028Hall"),  # a line separator, a line break to many programs
])
def test_text_the_programme_refuses_is_refused_by_the_sign_up_form_too(client, field, value):
    event = make_event()
    response = sign_up(client, event.slug, **{field: value})
    assert response.status_code == 422
    assert "must not contain line breaks or control characters" in response.get_data(
        as_text=True)
    assert registrations() == [] and messages() == []


def test_missing_or_wrong_csrf_token_answers_400_and_stores_nothing(client):
    event = make_event()
    assert client.post(f"/events/{event.slug}/register", data=form_data()).status_code == 400
    response = client.post(f"/events/{event.slug}/register",
                           data=form_data(csrf_token="forged"))
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)
    assert registrations() == []


def test_markup_in_fields_is_stored_as_typed_and_shown_inert(client):
    event = make_event()
    name = '<script>alert("x")</script>'
    assert sign_up(client, event.slug, name=name, organisation="<b>City</b>").status_code == 303
    [registration] = registrations()
    assert registration.name == name
    bad = sign_up(client, event.slug, email="bad", name=name)
    page = bad.get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize("value", ["=1+2", "+81 45 671 2121", "-Jean-Luc", "@cityhall"])
def test_values_with_formula_characters_are_kept_as_typed(client, value):
    event = make_event()
    assert sign_up(client, event.slug, organisation=value, name=value).status_code == 303
    [registration] = registrations()
    assert (registration.name, registration.organisation) == (value, value)


def test_body_over_the_limit_answers_413_and_stores_nothing(client):
    event = make_event()
    token = csrf_token(client, event.slug)
    response = client.post(f"/events/{event.slug}/register",
                           data=form_data(csrf_token=token, name="x" * 100_000))
    assert response.status_code == 413
    assert registrations() == []


def test_unknown_event_answers_404(client):
    assert client.get("/events/no-such-session").status_code == 404
    assert client.post("/events/no-such-session/register", data=form_data()).status_code in (
        400, 404)


def test_unknown_event_answers_404_naming_the_slug_on_public_and_console_pages(admin):
    for path in ("/events/no-such-session", "/admin/events/no-such-session",
                 "/admin/events/no-such-session/attendees.csv"):
        response = admin.get(path)
        assert response.status_code == 404
        assert "No event has the slug &#39;no-such-session&#39;." in response.get_data(
            as_text=True)


def test_cancelled_event_takes_no_sign_ups(client):
    event = make_event()
    token = csrf_token(client, event.slug)
    event.status = "cancelled"
    db.session.commit()
    page = client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert "was cancelled" in page and 'name="email"' not in page
    response = client.post(f"/events/{event.slug}/register", data=form_data(csrf_token=token))
    assert response.status_code == 410
    assert registrations() == []


def test_a_sign_up_racing_the_sessions_cancellation_answers_410_and_stores_nothing(
        client, monkeypatch):
    event = make_event()
    first = client.post(f"/events/{event.slug}/register", data=form_data(
        csrf_token=csrf_token(client, event.slug), email="first@example.org"))
    assert first.status_code == 303
    token = csrf_token(client, event.slug)
    # The view read the event open; the cancellation lands just before the sign-up takes the
    # event's lock. That is the race of a sign-up and the console's cancellation, made to
    # happen every time (on SQLite, where writers never overlap, it can't happen otherwise).
    lock_event = services.lock_event

    def cancelled_meanwhile(event):
        db.session.execute(sa.update(Event).where(Event.id == event.id)
                           .values(status="cancelled"))
        return lock_event(event)

    monkeypatch.setattr(services, "lock_event", cancelled_meanwhile)

    response = client.post(f"/events/{event.slug}/register",
                           data=form_data(csrf_token=token, email="racer@example.org"))

    assert response.status_code == 410
    assert "was cancelled and takes no sign-ups" in response.get_data(as_text=True)
    db.session.expire_all()
    assert [r.email for r in registrations()] == ["first@example.org"]
    assert {m.recipient for m in messages()} == {"first@example.org"}


def test_sign_up_stays_open_until_the_end_then_answers_410(app, client):
    event = make_event(starts_at=NOW - timedelta(minutes=30))
    assert sign_up(client, event.slug).status_code == 303
    token = csrf_token(client, event.slug)
    app.config["CLOCK"] = lambda: event.ends_at
    page = client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert "has ended" in page
    response = client.post(f"/events/{event.slug}/register",
                           data=form_data(csrf_token=token, email="late@example.org"))
    assert response.status_code == 410
    assert len(registrations()) == 1


def test_full_event_says_so_and_puts_sign_ups_on_the_waiting_list(client):
    event = make_event(capacity=1)
    assert "1 seat left" in client.get(f"/events/{event.slug}").get_data(as_text=True)
    sign_up(client, event.slug, email="first@example.org")
    page = client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert "Fully booked: you will join the waiting list" in page
    sign_up(client, event.slug, email="second@example.org")
    assert [r.status for r in registrations()] == ["confirmed", "waitlisted"]
    assert [(m.kind, m.ical_method) for m in messages()] == [
        ("confirmation", "REQUEST"), ("waitlisted", None)]
    db.session.refresh(event)
    assert event.confirmed_count == 1


def test_the_chosen_time_zone_is_stored(client):
    event = make_event()
    assert sign_up(client, event.slug, timezone="America/Sao_Paulo").status_code == 303
    assert registrations()[0].timezone == "America/Sao_Paulo"


@pytest.fixture
def limited_client(app_with):
    """A client of an app with the rate limits on (the other tests run with them off)."""
    with app_with(RATELIMIT_ENABLED="true", RATELIMIT_SIGNUP_PER_IP="15 per hour",
                  RATELIMIT_SIGNUP_PER_EMAIL="4 per hour") as limited:
        yield limited.test_client()


def test_rate_limit_per_email_answers_429_without_storing(limited_client):
    event = make_event()
    codes = [sign_up(limited_client, event.slug).status_code for _ in range(5)]
    assert codes == [303, 303, 303, 303, 429]
    other = sign_up(limited_client, event.slug, email="someone.else@example.org")
    assert other.status_code == 303
    assert len(registrations()) == 2


def test_rate_limit_per_ip_answers_429(limited_client):
    event = make_event()
    codes = [sign_up(limited_client, event.slug, email=f"p{i}@example.org").status_code
             for i in range(16)]
    assert codes[:15] == [303] * 15 and codes[15] == 429
    assert "Please wait" in sign_up(limited_client, event.slug,
                                    email="p99@example.org").get_data(as_text=True)
    assert len(registrations()) == 15


def test_full_width_letters_in_the_address_share_the_per_address_limit(limited_client):
    event = make_event()
    codes = [sign_up(limited_client, event.slug).status_code for _ in range(4)]
    # The same address with its domain typed in full-width letters is the same person.
    codes.append(sign_up(limited_client, event.slug,
                         email="aiko.tanaka@ｅｘａｍｐｌｅ.org").status_code)
    assert codes == [303, 303, 303, 303, 429]
    assert len(registrations()) == 1


def test_an_international_domain_is_stored_in_its_idna_2008_ascii_form(client):
    event = make_event()
    assert sign_up(client, event.slug, email="anna@faß.de").status_code == 303
    [registration] = registrations()
    assert registration.email == "anna@xn--fa-hia.de"
    assert registration.email_key == "anna@xn--fa-hia.de"
    assert messages()[0].recipient == "anna@xn--fa-hia.de"


@pytest.mark.parametrize("first, second, stored", [
    # IDNA 2008 keeps ß in a domain; IDNA 2003 (Python's idna codec) made it "ss".
    ("anna@faß.de", "anna@fass.de", ["anna@xn--fa-hia.de", "anna@fass.de"]),
    # casefold() makes ß "ss" too: before the @ the key only lowers.
    ("straße@example.org", "strasse@example.org", ["straße@example.org", "strasse@example.org"]),
], ids=["domain", "local-part"])
def test_sharp_s_and_ss_are_two_people_not_a_repeat(client, first, second, stored):
    event = make_event()
    assert sign_up(client, event.slug, email=first).status_code == 303
    assert sign_up(client, event.slug, email=second).status_code == 303
    assert [r.email for r in registrations()] == stored
    assert [m.recipient for m in messages()] == stored


def test_an_international_domain_typed_in_unicode_or_ascii_is_one_person(client):
    event = make_event()
    for typed in ("Anna@Faß.de", "anna@xn--fa-hia.de", "anna@FAß.DE"):
        assert sign_up(client, event.slug, email=typed).status_code == 303
    assert len(registrations()) == 1


def test_a_local_part_beyond_ascii_is_accepted_with_the_domain_in_ascii(client):
    event = make_event()
    assert sign_up(client, event.slug, email="josé@faß.de").status_code == 303
    [registration] = registrations()
    assert registration.email == "josé@xn--fa-hia.de"
