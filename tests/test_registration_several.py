"""Choosing several sessions and signing up once: the form for the chosen sessions, one
registration and one email (with its own invite) per session, in one transaction, and what is
refused with nothing stored."""

from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import sqlalchemy as sa
import vobject

from extensions import db
from notifications.dispatcher import dispatch
from notifications.models import Message
from registration import services
from registration.models import Event, Registration
from tests.conftest import (
    ATTENDEE,
    CSRF_RE,
    NOW,
    form_data,
    make_event,
    make_registration,
    sign_up,
)

SLUGS = ("climate-finance-101", "resilient-ports", "cities-and-data")


def three_sessions(**capacities):
    """Three sessions a day apart, in SLUGS order (capacity by slug, else no cap)."""
    return [make_event(slug=slug, title=slug.replace("-", " ").capitalize(),
                       starts_at=NOW + timedelta(days=30 + n), capacity=capacities.get(slug))
            for n, slug in enumerate(SLUGS)]


def choose_url(*slugs):
    return "/signup?" + "&".join(f"event={slug}" for slug in slugs)


def csrf_of(client, *slugs):
    page = client.get(choose_url(*slugs))
    assert page.status_code == 200, page.status_code
    return CSRF_RE.search(page.get_data(as_text=True)).group(1)


def sign_up_several(client, slugs, token_slugs=None, **overrides):
    """POST the form for several sessions with a valid CSRF token; returns the response."""
    data = form_data(**overrides)
    data.setdefault("csrf_token", csrf_of(client, *(token_slugs or slugs)))
    data["event"] = list(slugs)
    return client.post("/signup", data=data)


def registrations():
    return db.session.scalars(sa.select(Registration).order_by(Registration.id)).all()


def signup_messages():
    """The sign-up emails queued (reminders have tests of their own)."""
    return db.session.scalars(
        sa.select(Message).where(Message.kind != "reminder").order_by(Message.id)).all()


def invites_delivered(smtp):
    """(recipient, UID, event start) of each invite delivered, and the count of mails."""
    invites = []
    for mail in smtp.messages():
        for part in mail.walk():
            if part.get_content_type() == "text/calendar":
                vevent = vobject.readOne(part.get_payload(decode=True).decode()).vevent
                invites.append((vevent.uid.value, vevent.dtstart.value))
                break
    return invites


def test_three_sessions_in_one_submission_make_three_registrations_and_three_invites(
        app, client, smtp):
    events = three_sessions()
    response = sign_up_several(client, SLUGS)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/signup/done")
    stored = registrations()
    assert [r.event.slug for r in stored] == list(SLUGS)
    assert {r.status for r in stored} == {"confirmed"}
    assert {r.email for r in stored} == {ATTENDEE["email"]}
    assert len({r.ical_uid for r in stored}) == 3

    summary = dispatch(NOW)

    assert summary.sent == 3
    mails = smtp.messages()
    assert len(mails) == 3
    invites = invites_delivered(smtp)
    assert len(invites) == 3
    assert {uid for uid, _ in invites} == {r.ical_uid for r in stored}
    assert sorted(start for _, start in invites) == [event.starts_at for event in events]
    assert {recipient for _, recipients, _ in smtp.delivered for recipient in recipients} == {
        ATTENDEE["email"]}


def test_a_full_session_among_three_gives_two_invites_and_one_waiting_list_notice(
        app, client, smtp):
    three_sessions(**{"resilient-ports": 1})
    holder = make_registration(db.session.scalar(
        sa.select(Event).where(Event.slug == "resilient-ports")), email="first@example.org")
    db.session.execute(sa.update(Event).where(Event.slug == "resilient-ports")
                       .values(confirmed_count=1))
    db.session.commit()
    holder_id = holder.id

    assert sign_up_several(client, SLUGS).status_code == 303

    mine = [r for r in registrations() if r.id != holder_id]
    assert [(r.event.slug, r.status) for r in mine] == [
        ("climate-finance-101", "confirmed"), ("resilient-ports", "waitlisted"),
        ("cities-and-data", "confirmed")]
    assert [m.kind for m in signup_messages()] == ["confirmation", "waitlisted", "confirmation"]
    assert dispatch(NOW).sent == 3
    invites = invites_delivered(smtp)
    assert len(smtp.messages()) == 3
    assert sorted(uid for uid, _ in invites) == sorted(
        r.ical_uid for r in mine if r.status == "confirmed")
    [notice] = [mail for mail in smtp.messages()
                if not any(p.get_content_type() == "text/calendar" for p in mail.walk())]
    assert "waiting list" in notice["Subject"].lower()


def test_a_session_already_held_is_a_repeat_for_that_session_only(client):
    three_sessions()
    assert sign_up(client, "resilient-ports").status_code == 303
    [held] = registrations()

    again = sign_up_several(client, SLUGS, name="Aiko T.")

    assert again.status_code == 303
    stored = registrations()
    assert [r.event.slug for r in stored] == ["resilient-ports", "climate-finance-101",
                                              "cities-and-data"]
    assert stored[0].id == held.id and stored[0].name == "Aiko Tanaka"
    # The one held got its confirmation again; each new one its first.
    by_registration = [(m.registration_id, m.kind) for m in signup_messages()]
    assert by_registration.count((held.id, "confirmation")) == 2
    assert len(by_registration) == 4


def test_thank_you_page_lists_the_sessions_and_is_the_same_for_new_and_repeat(client):
    three_sessions()
    first = sign_up_several(client, SLUGS[:2])
    first_page = client.get(first.headers["Location"])
    repeat = sign_up_several(client, SLUGS[:2])
    repeat_page = client.get(repeat.headers["Location"])

    assert first.headers["Location"] == repeat.headers["Location"]
    assert first_page.status_code == repeat_page.status_code == 200
    assert first_page.get_data() == repeat_page.get_data()
    text = first_page.get_data(as_text=True)
    assert "Climate finance 101" in text and "Resilient ports" in text
    assert "Cities and data" not in text
    assert "aiko.tanaka@example.org" in text
    assert "Seat holders get reminders by email 7 days, 1 day, and 1 hour before" in text
    assert first_page.headers["Cache-Control"] == "no-store"
    # Shown once: a reload no longer names the address or the sessions.
    reload = client.get("/signup/done").get_data(as_text=True)
    assert "aiko.tanaka@example.org" not in reload and "Resilient ports" not in reload


@pytest.mark.parametrize("closing", ["ended", "cancelled", "unknown"])
def test_a_closed_or_unknown_session_refuses_the_submission_and_stores_nothing(client, closing):
    events = three_sessions()
    token = csrf_of(client, *SLUGS)
    slugs = list(SLUGS)
    if closing == "unknown":
        slugs[1] = "no-such-session"
        named = "There is no session “no-such-session” in the programme."
    else:
        values = ({"status": "cancelled"} if closing == "cancelled" else
                  {"starts_at": NOW - timedelta(hours=3), "ends_at": NOW - timedelta(hours=1)})
        db.session.execute(sa.update(Event).where(Event.id == events[1].id).values(**values))
        db.session.commit()
        named = ("“Resilient ports” was cancelled and takes no sign-ups." if closing == "cancelled"
                 else "“Resilient ports” has ended and takes no more sign-ups.")

    response = sign_up_several(client, slugs, csrf_token=token)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert named.replace("“", "&#8220;") in page or named in page
    assert 'href="#sessions"' in page
    assert 'value="City of Yokohama"' in page
    # The form comes back with the sessions that still take sign-ups, ready to send again.
    assert 'name="event" value="climate-finance-101"' in page
    assert 'name="event" value="cities-and-data"' in page
    assert 'name="event" value="resilient-ports"' not in page
    assert registrations() == [] and signup_messages() == []


def test_a_session_cancelled_between_reading_and_locking_refuses_all(client, monkeypatch):
    events = three_sessions()
    token = csrf_of(client, *SLUGS)
    lock = services.lock_event

    def cancelled_meanwhile(event):
        if event.id == events[2].id:
            db.session.execute(sa.update(Event).where(Event.id == event.id)
                               .values(status="cancelled"))
        return lock(event)

    monkeypatch.setattr(services, "lock_event", cancelled_meanwhile)
    response = sign_up_several(client, SLUGS, csrf_token=token)

    assert response.status_code == 422
    assert "was cancelled and takes no sign-ups" in response.get_data(as_text=True)
    assert registrations() == [] and signup_messages() == []


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "", "Enter your full name"),
        ("email", "not-an-address", "Enter an email address with an @, like name@example.com"),
        ("country", "XX", "Select your country"),
        ("consent", "", "Confirm that you have read and accept the privacy notice"),
        ("name", "x" * 201, "Full name must be 200 characters or fewer"),
    ],
)
def test_invalid_field_re_renders_the_form_with_the_sessions_and_stores_nothing(
        client, field, value, message):
    three_sessions()
    response = sign_up_several(client, SLUGS, **{field: value})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert f'id="{field}-error"' in page and f'href="#{field}"' in page
    assert 'value="City of Yokohama"' in page
    assert all(f'name="event" value="{slug}"' in page for slug in SLUGS)
    assert registrations() == [] and signup_messages() == []


def test_missing_csrf_token_answers_400_and_stores_nothing(client):
    three_sessions()
    response = client.post("/signup", data={**form_data(), "event": list(SLUGS)})
    assert response.status_code == 400
    assert registrations() == []


def test_filled_honeypot_answers_the_same_and_stores_nothing(client):
    three_sessions()
    response = sign_up_several(client, SLUGS, website="http://spam.example.com")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/signup/done")
    assert registrations() == [] and signup_messages() == []


def test_no_session_chosen_is_refused_on_post_and_explained_on_get(client):
    three_sessions()
    token = csrf_of(client, SLUGS[0])
    response = client.post("/signup", data=form_data(csrf_token=token))
    assert response.status_code == 422
    assert "Choose at least one session from the programme." in response.get_data(as_text=True)
    page = client.get("/signup")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No session that takes sign-ups is chosen." in text
    assert 'href="/"' in text and 'method="post"' not in text
    assert registrations() == []


def test_too_many_sessions_at_once_answer_400_with_a_message(client):
    three_sessions()
    slugs = [f"session-{n}" for n in range(21)]
    response = client.get(choose_url(*slugs))
    assert response.status_code == 400
    assert "Choose at most 20 sessions at a time" in response.get_data(as_text=True)
    token = csrf_of(client, *SLUGS)
    posted = client.post("/signup", data={**form_data(csrf_token=token), "event": slugs})
    assert posted.status_code == 400
    assert registrations() == []


def test_duplicate_and_padded_slugs_collapse_to_one_registration_each(client):
    three_sessions()
    response = sign_up_several(client, [SLUGS[0], f" {SLUGS[0]} ", SLUGS[1], SLUGS[0], ""])
    assert response.status_code == 303
    assert [r.event.slug for r in registrations()] == list(SLUGS[:2])
    assert len(signup_messages()) == 2


def test_form_page_shows_each_session_its_time_seats_and_a_way_to_drop_it(client):
    events = three_sessions(**{"resilient-ports": 1, "cities-and-data": 40})
    db.session.execute(sa.update(Event).where(Event.slug == "resilient-ports")
                       .values(confirmed_count=1))
    db.session.commit()

    page = client.get(choose_url(*SLUGS) + "&event=no-such-session")

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for event in events:
        assert f'datetime="{event.starts_at.strftime("%Y-%m-%dT%H:%M:%SZ")}"' in text
    assert "Fully booked: you will join the waiting list." in text
    assert "40 seats left." in text
    assert "There is no session “no-such-session” in the programme." in text
    drops = [urlsplit(href) for href in _hrefs(text, 'class="drop"')]
    assert len(drops) == 3
    assert [parse_qs(drop.query)["event"] for drop in drops] == [
        [SLUGS[1], SLUGS[2]], [SLUGS[0], SLUGS[2]], [SLUGS[0], SLUGS[1]]]
    assert all(drop.path == "/signup" for drop in drops)


def _hrefs(page: str, marker: str) -> list[str]:
    import html
    import re

    return [html.unescape(m) for m in re.findall(rf'<a {marker} href="([^"]+)"', page)]


def test_the_programme_offers_a_box_for_each_open_session_only(client):
    three_sessions()
    make_event(slug="called-off", title="Called off", status="cancelled")
    make_event(slug="long-gone", title="Long gone", starts_at=NOW - timedelta(days=3))
    page = client.get("/").get_data(as_text=True)
    assert 'method="get" action="/signup"' in page
    boxes = set(_values(page, 'name="event"'))
    assert boxes == set(SLUGS)
    assert "Sign up for the chosen sessions" in page


def _values(page: str, marker: str) -> list[str]:
    import re

    return re.findall(rf'{marker} value="([^"]+)"', page)


def test_a_session_page_offers_the_others_with_this_one_chosen(client):
    three_sessions()
    make_event(slug="called-off", title="Called off", status="cancelled")
    page = client.get(f"/events/{SLUGS[0]}").get_data(as_text=True)
    assert 'method="get" action="/signup"' in page
    assert f'<input type="hidden" name="event" value="{SLUGS[0]}">' in page
    assert set(_values(page, 'type="checkbox" id="also-[^"]+" name="event"')) == set(SLUGS[1:])


def test_the_language_switch_of_a_refused_form_keeps_the_sessions(client):
    three_sessions()
    page = sign_up_several(client, SLUGS[:2], name="").get_data(as_text=True)
    assert (f'href="/signup?event={SLUGS[0]}&amp;event={SLUGS[1]}&amp;lang=ja"') in page


def test_rate_limits_count_one_submission_once_whatever_the_number_of_sessions(app_with):
    with app_with(RATELIMIT_ENABLED="true", RATELIMIT_SIGNUP_PER_EMAIL="2 per hour") as app:
        three_sessions()
        client = app.test_client()
        assert sign_up_several(client, SLUGS).status_code == 303
        assert sign_up_several(client, SLUGS).status_code == 303
        assert sign_up_several(client, SLUGS).status_code == 429
        # Another address from the same IP is not held back by the first one's limit.
        assert sign_up_several(client, SLUGS, email="other@example.org").status_code == 303
        assert len(registrations()) == 6


def test_sign_up_many_names_every_closed_session_and_changes_nothing(app):
    events = three_sessions()
    for event in events[1:]:
        event.status = "cancelled"
    db.session.commit()
    applicant = services.Applicant(**ATTENDEE, email_key=ATTENDEE["email"],
                                   consent_version="2025-06")
    with pytest.raises(services.SignupClosed) as refused:
        services.sign_up_many(events, applicant, NOW)
    assert refused.value.args == (SLUGS[1], SLUGS[2])
    db.session.rollback()
    assert registrations() == []


def test_a_chosen_value_no_slug_can_be_is_refused_without_asking_the_database(client):
    events = three_sessions()
    for value in ("a\x00b", "x" * 81, "tab\there"):
        page = client.get(choose_url(events[0].slug) + "&event=" + quote(value))
        assert page.status_code == 200, value
        assert "There is no session" in page.get_data(as_text=True)
        response = sign_up_several(client, [events[0].slug, value],
                                   token_slugs=[events[0].slug])
        assert response.status_code == 422, value
    assert registrations() == []


def test_a_choice_of_only_unknown_sessions_asks_only_about_the_choice(client):
    three_sessions()
    response = sign_up_several(client, ["no-such-session"], token_slugs=[SLUGS[0]], name="",
                               email="")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    # No form is shown without a session, so the summary links to no field of one.
    assert '<a href="#sessions">' in html and '<a href="#name">' not in html
    assert registrations() == []
