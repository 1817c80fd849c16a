"""After the sign-up: the thank-you page, the registrant's own invite, the waiting-list place,
cancelling through a confirmation page, and the same pages in Japanese."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import vobject

from extensions import db
from notifications import planner
from notifications.dispatcher import dispatch
from notifications.models import Message
from registration import changes, places, services, tokens
from registration.models import Registration
from tests.conftest import NOW, make_event, make_registration, outbox, sign_up

JAPANESE = {"Accept-Language": "ja-JP,ja;q=0.9"}
# Calendar copies that never update: none may be offered to a registrant.
STALE_COPIES = ("calendar.google.com", "outlook.live.com", "outlook.office.com", "webcal:",
                "programme.ics")


def registration_for(email):
    return db.session.scalar(sa.select(Registration).where(Registration.email == email))


def manage_path(registration):
    return f"/r/{tokens.manage_token(registration)}"


def thank_you(client, event, **form):
    response = sign_up(client, event.slug, **form)
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    return page


# --- the thank-you page ----------------------------------------------------------------------


def test_thank_you_page_names_the_address_as_typed(client):
    event = make_event()
    page = thank_you(client, event, email="Aiko.Tanaka@Example.org").get_data(as_text=True)
    assert 'We have sent an email to <strong class="address">Aiko.Tanaka@Example.org</strong>' \
        in page
    assert "the address you gave" not in page


def test_the_address_is_shown_once_and_leaves_the_session_cookie(app, client):
    event = make_event()
    response = thank_you(client, event, email="Aiko.Tanaka@Example.org")
    assert "Aiko.Tanaka@Example.org" in response.get_data(as_text=True)
    # The next person at a shared computer finds the address neither on a reload nor in the
    # (signed, readable) session cookie.
    reload = client.get(f"/events/{event.slug}/registered").get_data(as_text=True)
    assert "We have sent an email to the address you gave." in reload
    cookie = client.get_cookie("session")
    serializer = app.session_interface.get_signing_serializer(app)
    assert cookie is None or "Aiko" not in str(serializer.loads(cookie.value))


def test_thank_you_page_is_the_same_for_a_first_and_a_repeat_sign_up(app, client):
    event = make_event(capacity=1)
    first = thank_you(client, event, email="aiko.tanaka@example.org")
    repeat = thank_you(client, event, email="  AIKO.tanaka@example.ORG ")
    waiting = thank_you(client, event, email="ben@example.org")
    assert len(db.session.scalars(sa.select(Registration)).all()) == 2  # the repeat added none
    assert registration_for("ben@example.org").status == "waitlisted"
    pages = [response.get_data() for response in (first, repeat, waiting)]
    typed = [b"aiko.tanaka@example.org", b"AIKO.tanaka@example.ORG", b"ben@example.org"]
    assert all(address in page for page, address in zip(pages, typed, strict=True))
    # Byte for byte the same once the address is set aside: a seat, a repeat or the waiting
    # list can't be told apart.
    same = {page.replace(address, b"ADDRESS") for page, address in zip(pages, typed,
                                                                        strict=True)}
    assert len(same) == 1
    # The session cookie is compared by what it holds: its signature carries the second it
    # was signed in, which may differ between the three answers.
    serializer = app.session_interface.get_signing_serializer(app)
    headers = [{name: value for name, value in r.headers.items()
                if name not in ("Content-Length", "Set-Cookie")} for r in (first, repeat, waiting)]
    cookies = [[serializer.loads(value.split(";")[0].partition("=")[2])
                if value.startswith("session=") else value
                for value in r.headers.getlist("Set-Cookie")] for r in (first, repeat, waiting)]
    assert headers[0] == headers[1] == headers[2]
    assert cookies[0] == cookies[1] == cookies[2]


def test_thank_you_page_without_this_submission_names_no_address(app, client):
    event = make_event()
    other = make_event(slug="urban-heat", title="Urban heat")
    sign_up(client, other.slug, email="someone@example.org")
    for visitor in (app.test_client(), client):  # a fresh visit; a sign-up for another session
        page = visitor.get(f"/events/{event.slug}/registered").get_data(as_text=True)
        assert "We have sent an email to the address you gave." in page
        assert "someone@example.org" not in page


def test_thank_you_page_says_what_happens_next_and_how_to_reach_the_organisers(client):
    event = make_event()
    response = thank_you(client, event)
    page = response.get_data(as_text=True)
    assert 'class="panel"' in page and page.count("<h1>") == 1
    for words in ("What happens next", "calendar invite", "The join link is in the invite",
                  "If no email arrives", "spam", "Sign up again with the same address",
                  'href="mailto:organisers@example.org"'):
        assert words in page, words
    assert response.headers["Cache-Control"] == "no-store"


def test_reminder_words_follow_the_reminder_offsets_setting(app, client):
    event = make_event()
    page = thank_you(client, event).get_data(as_text=True)
    assert "reminders by email 7 days, 1 day, and 1 hour before the session starts" in page

    app.config["REMINDER_OFFSETS"] = planner.parse_offsets("2d,90m")
    page = client.get(f"/events/{event.slug}/registered").get_data(as_text=True)
    assert "reminders by email 2 days and 90 minutes before the session starts" in page

    japanese = client.get(f"/events/{event.slug}/registered", headers=JAPANESE)
    assert "セッション開始の2日、90分前にリマインダー" in japanese.get_data(as_text=True)


def test_reminder_words_name_only_the_reminders_still_ahead(app, client):
    soon = make_event(starts_at=NOW + timedelta(hours=5))
    page = thank_you(client, soon).get_data(as_text=True)
    assert "reminders by email 1 hour before the session starts" in page
    app.config["CLOCK"] = lambda: soon.starts_at - timedelta(minutes=30)
    page = client.get(f"/events/{soon.slug}/registered").get_data(as_text=True)
    assert "Seat holders get reminders" not in page


def test_thank_you_page_in_japanese(client):
    event = make_event()
    sign_up(client, event.slug)
    response = client.get(f"/events/{event.slug}/registered", headers=JAPANESE)
    page = response.get_data(as_text=True)
    assert '<html lang="ja">' in page
    assert "<title>メールをご確認ください" in page
    assert '<strong class="address">aiko.tanaka@example.org</strong> にメールをお送りしました' \
        in page
    assert "今後の流れ" in page and "メールが届かない場合" in page
    assert "2025年7月20日" in page  # the session's time, in Japanese too
    assert "セッション開始の7日、1日、1時間前にリマインダー" in page


# --- no copy that won't update ---------------------------------------------------------------


def test_thank_you_and_manage_pages_offer_no_calendar_copy_that_would_not_update(client):
    event = make_event()
    thanks = thank_you(client, event).get_data(as_text=True)
    manage = client.get(manage_path(registration_for("aiko.tanaka@example.org")))
    for page in (thanks, manage.get_data(as_text=True)):
        assert not [copy for copy in STALE_COPIES if copy in page]
        assert f"/events/{event.slug}.ics" not in page


# --- the registrant's own invite -------------------------------------------------------------


def calendar_parts(app):
    """Every invite emailed so far: its raw bytes."""
    return [part.get_payload(decode=True) for mail in outbox(app) for part in mail.walk()
            if part.get_content_type() == "text/calendar"]


def read_vevent(data: bytes):
    [vevent] = vobject.readOne(data.decode("utf-8")).contents["vevent"]
    return vevent


def test_own_invite_is_the_emailed_invite_without_method(app, client):
    event = make_event()
    sign_up(client, event.slug)
    dispatch(NOW)
    registration = registration_for("aiko.tanaka@example.org")
    response = client.get(manage_path(registration) + "/invite.ics")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    [emailed] = calendar_parts(app)
    assert b"METHOD:REQUEST\r\n" in emailed and b"METHOD" not in response.data
    # Built at the same instant, the file is the email's calendar byte for byte, but METHOD.
    assert response.data == emailed.replace(b"METHOD:REQUEST\r\n", b"")
    vevent = read_vevent(response.data)
    assert vevent.uid.value == registration.ical_uid
    assert int(vevent.sequence.value) == 0
    assert event.join_url in vevent.description.value


def test_own_invite_follows_the_last_update_uid_and_sequence(app, client):
    event = make_event()
    sign_up(client, event.slug)
    dispatch(NOW)
    later = NOW + timedelta(hours=2)
    changes.change_event(event, {"starts_at": event.starts_at + timedelta(days=1),
                                  "ends_at": event.ends_at + timedelta(days=1)}, later)
    db.session.commit()
    dispatch(later)
    app.config["CLOCK"] = lambda: later + timedelta(minutes=5)
    registration = registration_for("aiko.tanaka@example.org")
    own = read_vevent(client.get(manage_path(registration) + "/invite.ics").data)

    last = read_vevent(calendar_parts(app)[-1])
    assert (own.uid.value, own.sequence.value) == (last.uid.value, last.sequence.value)
    assert int(own.sequence.value) == registration.ical_sequence == 1
    assert own.dtstart.value == last.dtstart.value == event.starts_at


@pytest.mark.parametrize("case", ["waitlisted", "cancelled", "session cancelled", "unknown"])
def test_own_invite_is_404_without_a_seat(client, case):
    event = make_event(capacity=0 if case == "waitlisted" else None)
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    if case == "cancelled":
        services.cancel(registration, NOW)
    if case == "session cancelled":
        changes.change_event(event, {"status": "cancelled"}, NOW)
    db.session.commit()
    path = "/r/not-a-real-token" if case == "unknown" else manage_path(registration)
    assert client.get(path + "/invite.ics").status_code == 404
    assert "invite.ics" not in client.get(path).get_data(as_text=True)


# --- the waiting list ------------------------------------------------------------------------


def test_waiting_list_position_follows_the_promotion_order(client):
    event = make_event(capacity=1)
    emails = ["first@example.org", "second@example.org", "third@example.org",
              "fourth@example.org"]
    for email in emails:
        sign_up(client, event.slug, email=email)  # the same clock: the id breaks the tie
    assert [places.waiting_position(registration_for(e)) for e in emails] == [None, 1, 2, 3]
    page = client.get(manage_path(registration_for("fourth@example.org"))).get_data(
        as_text=True)
    assert "You are number 3 on the waiting list." in page

    services.cancel(registration_for("first@example.org"), NOW)
    db.session.commit()
    assert registration_for("second@example.org").status == "confirmed"  # number 1 went up
    assert [places.waiting_position(registration_for(e)) for e in emails[2:]] == [1, 2]


def test_an_earlier_sign_up_is_ahead_whatever_its_id(app):
    event = make_event(capacity=0)
    late = make_registration(event, status="waitlisted", confirmed_at=None,
                             email="late@example.org", registered_at=NOW + timedelta(hours=1))
    early = make_registration(event, status="waitlisted", confirmed_at=None,
                              email="early@example.org", registered_at=NOW)
    db.session.commit()
    assert (places.waiting_position(early), places.waiting_position(late)) == (1, 2)


# --- cancelling ------------------------------------------------------------------------------


def confirmation_page(client, registration, **headers):
    response = client.get(manage_path(registration) + "/cancel", headers=headers)
    assert response.status_code == 200
    return response


def press_the_button(client, page):
    form = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(form, data={"csrf_token": csrf})


def test_the_cancel_confirmation_page_asks_and_changes_nothing(client):
    event = make_event(capacity=1)
    sign_up(client, event.slug)
    sign_up(client, event.slug, email="next@example.org")
    registration = registration_for("aiko.tanaka@example.org")
    before = db.session.scalar(sa.select(sa.func.count(Message.id)))

    response = confirmation_page(client, registration)
    page = response.get_data(as_text=True)

    assert "<h1>Cancel your place?</h1>" in page
    assert "goes to the next person on the waiting list" in page
    assert "removes the session from your calendar" in page
    assert f'action="{manage_path(registration)}/cancel"' in page
    assert "Yes, cancel my place" in page
    assert f'href="{manage_path(registration)}">No, keep my place' in page
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    db.session.expire_all()
    assert registration_for("aiko.tanaka@example.org").status == "confirmed"
    assert registration_for("next@example.org").status == "waitlisted"
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == before


def test_after_cancelling_a_seat_the_page_confirms_and_links_back_to_sign_up(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    response = press_the_button(client, confirmation_page(client, registration).get_data(
        as_text=True))
    assert response.status_code == 303
    assert response.headers["Location"] == manage_path(registration) + "/cancelled"

    done = client.get(response.headers["Location"])
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    assert "<h1>Your place is cancelled</h1>" in page
    assert "removes the session from your calendar" in page
    assert f'<a href="/events/{event.slug}">sign up again' in page
    db.session.refresh(registration)
    assert registration.status == "cancelled"
    manage = client.get(manage_path(registration)).get_data(as_text=True)
    assert "Your registration is cancelled." in manage and "Cancel my place" not in manage


def test_leaving_the_waiting_list_is_worded_for_the_list(client):
    event = make_event(capacity=0)
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    page = confirmation_page(client, registration).get_data(as_text=True)
    assert "<h1>Leave the waiting list?</h1>" in page and "Yes, leave the waiting list" in page
    assert "No, stay on the waiting list" in page

    done = client.get(press_the_button(client, page).headers["Location"]).get_data(as_text=True)
    assert "<h1>You have left the waiting list</h1>" in done
    assert f'<a href="/events/{event.slug}">sign up again' in done


def test_the_cancelled_page_before_cancelling_leads_to_the_manage_page(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    response = client.get(manage_path(registration) + "/cancelled")
    assert response.status_code == 303
    assert response.headers["Location"] == manage_path(registration)


def test_cancelled_page_of_a_session_that_ended_points_to_the_programme(app, client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registration_for("aiko.tanaka@example.org")
    services.cancel(registration, NOW)
    db.session.commit()
    app.config["CLOCK"] = lambda: event.ends_at + timedelta(minutes=1)
    page = client.get(manage_path(registration) + "/cancelled").get_data(as_text=True)
    assert "takes no more sign-ups" in page and f'href="/events/{event.slug}"' not in page


# --- in Japanese -----------------------------------------------------------------------------


def test_the_registrant_pages_start_in_japanese_for_a_japanese_registrant(client):
    event = make_event(capacity=1)
    sign_up(client, event.slug, language="ja")
    sign_up(client, event.slug, email="next@example.org", language="ja")
    seat = registration_for("aiko.tanaka@example.org")
    waiting = registration_for("next@example.org")

    manage = client.get(manage_path(seat)).get_data(as_text=True)
    assert '<html lang="ja">' in manage and "お席が確保されています。" in manage
    assert "カレンダーに追加する" in manage and "参加をキャンセルする" in manage
    listed = client.get(manage_path(waiting)).get_data(as_text=True)
    assert "キャンセル待ちの1番目です。" in listed and "キャンセル待ちを取り消す" in listed
    # A visitor's own choice wins over the registrant's language.
    english = client.get(manage_path(waiting) + "?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "You are number 1 on the waiting list." in english
    client.get(manage_path(waiting) + "?lang=ja")  # the kept choice back to Japanese

    asked = confirmation_page(client, seat).get_data(as_text=True)
    assert "<h1>参加をキャンセルしますか？</h1>" in asked
    assert "はい、参加をキャンセルします" in asked
    done = client.get(press_the_button(client, asked).headers["Location"]).get_data(
        as_text=True)
    assert "<h1>参加登録をキャンセルしました</h1>" in done
    assert "セッションのページからもう一度登録</a>" in done


def test_the_delete_pages_in_japanese(client):
    event = make_event()
    sign_up(client, event.slug, language="ja")
    registration = registration_for("aiko.tanaka@example.org")
    asked = client.get(manage_path(registration) + "/delete").get_data(as_text=True)
    assert "<h1>個人データの削除</h1>" in asked and "元に戻すことはできません" in asked
    done = client.get("/deleted", headers=JAPANESE).get_data(as_text=True)
    assert "<h1>個人データを削除しました</h1>" in done


def test_the_manage_page_of_a_cancelled_session_offers_no_seat(client):
    event = make_event()
    sign_up(client, event.slug)
    changes.change_event(event, {"status": "cancelled"}, NOW)
    db.session.commit()
    page = client.get(manage_path(registration_for("aiko.tanaka@example.org"))).get_data(
        as_text=True)
    assert "The organisers cancelled this session." in page
    for offer in ("You have a seat", "Join the session", "Add to my calendar", "Cancel my place"):
        assert offer not in page, offer


def test_the_manage_page_after_the_end_says_so_and_offers_no_cancelling(app, client):
    event = make_event()
    sign_up(client, event.slug)
    app.config["CLOCK"] = lambda: event.ends_at + timedelta(minutes=1)
    page = client.get(manage_path(registration_for("aiko.tanaka@example.org"))).get_data(
        as_text=True)
    assert "This session has ended." in page
    for offer in ("Join the session", "Add to my calendar", "Cancel my place"):
        assert offer not in page, offer
