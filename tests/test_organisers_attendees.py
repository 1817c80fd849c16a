"""The console's attendees: the search across sessions, a registration's page, and the actions
on one registration (cancel with a note, re-send, a seat ahead of the queue, clear an
undeliverable mark) and adding someone by hand, each audited and each telling the person
through the outbox."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.dispatcher import dispatch
from notifications.models import Message
from registration import people
from registration.models import Event, Registration
from tests.conftest import (
    NOW,
    ORGANISER_EMAIL,
    form_data,
    make_event,
    make_registration,
    outbox,
)
from tests.test_organisers_events import audit_log, messages, post


def reload(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def page(client, path) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def actions() -> list[tuple[str, str, dict | None]]:
    return [entry for entry in audit_log() if entry[0] != "signed in"]


@pytest.fixture
def full(admin):
    """An event with one seat, taken, and two people waiting (Ben first, then Chen)."""
    event = make_event(capacity=1)
    make_registration(event, email="aiko@example.org")
    make_registration(event, name="Ben Okafor", email="ben@example.org", status="waitlisted",
                      confirmed_at=None, registered_at=NOW + timedelta(minutes=1))
    make_registration(event, name="Chen Wei", email="chen@example.org", status="waitlisted",
                      confirmed_at=None, registered_at=NOW + timedelta(minutes=2))
    event.confirmed_count = 1
    db.session.commit()
    return event


def by_email(address: str) -> Registration:
    db.session.expire_all()
    return db.session.scalar(sa.select(Registration).where(Registration.email == address))


# --- search ----------------------------------------------------------------------------------


def test_search_matches_name_address_or_organisation_in_any_session_case_aside(admin):
    first, second = make_event(), make_event(slug="heat-plans", title="Heat plans")
    make_registration(first, name="Aiko Tanaka", email="aiko@example.org",
                      organisation="City of Yokohama")
    make_registration(second, name="Ben Okafor", email="ben@lagos.example",
                      organisation="Lagos State")
    make_registration(second, name="Chen Wei", email="chen@example.org",
                      organisation="Tsinghua University")
    db.session.commit()

    def names(q):
        body = page(admin, f"/admin/attendees?q={q}")
        return [name for name in ("Aiko Tanaka", "Ben Okafor", "Chen Wei") if name in body]

    assert names("TANAKA") == ["Aiko Tanaka"]
    assert names("Lagos.EXAMPLE") == ["Ben Okafor"]
    assert names("tsinghua") == ["Chen Wei"]
    assert names("example.org") == ["Aiko Tanaka", "Chen Wei"]
    body = page(admin, "/admin/attendees?q=okafor")
    # The session links to its console page, the row to the registration's.
    assert 'href="/admin/events/heat-plans"' in body
    ben = by_email("ben@lagos.example")
    assert f'href="/admin/registrations/{ben.id}"' in body
    assert "1 registration found" in body


def test_search_takes_percent_and_underscore_as_themselves(admin):
    event = make_event()
    make_registration(event, name="Percent Person", email="a@example.org",
                      organisation="100% Renewable")
    make_registration(event, name="Under Score", email="under_score@example.org")
    make_registration(event, name="Plain Person", email="underxscore@example.org",
                      organisation="1000 Cities")
    db.session.commit()
    body = page(admin, "/admin/attendees?q=100%25")
    assert "Percent Person" in body and "Plain Person" not in body
    body = page(admin, "/admin/attendees?q=under_")
    assert "Under Score" in body and "Plain Person" not in body


def test_search_shows_fifty_a_page_with_the_total_and_links_between_pages(admin):
    event = make_event()
    for number in range(120):
        make_registration(event, name=f"Person {number:03d}", email=f"p{number}@example.org",
                          registered_at=NOW + timedelta(minutes=number))
    db.session.commit()
    first = page(admin, "/admin/attendees?q=person")
    assert "120 registrations found; showing 1–50." in first
    assert first.count('href="/admin/registrations/') == 50
    assert "Person 119" in first and "Person 070" in first and "Person 069" not in first
    assert "page=2" in first and "Previous" not in first
    third = page(admin, "/admin/attendees?q=person&page=3")
    assert "showing 101–120" in third and "Person 000" in third and "Person 020" not in third
    assert "page=2" in third and "Next 50" not in third
    # A page past the end, or not a number, shows a page that exists.
    assert "showing 101–120" in page(admin, "/admin/attendees?q=person&page=99")
    assert "showing 1–50" in page(admin, "/admin/attendees?q=person&page=x")


def test_search_leaves_out_registrations_whose_data_was_deleted(admin):
    event = make_event()
    make_registration(event, name="Kept Person", email="kept@example.org")
    make_registration(event, name="Gone Person", email="gone@example.org", anonymised_at=NOW)
    db.session.commit()
    body = page(admin, "/admin/attendees?q=person")
    assert "Kept Person" in body and "Gone Person" not in body
    assert "1 registration found" in body


def test_an_empty_search_shows_the_box_only_and_odd_input_is_no_error(admin):
    make_registration(make_event())
    db.session.commit()
    body = page(admin, "/admin/attendees")
    assert 'name="q"' in body and "found" not in body and "Aiko" not in body
    assert 'href="/admin/attendees"' in body  # the console's nav links the page
    # A NUL (which PostgreSQL refuses in text) is dropped, not sent to the database.
    assert "Aiko Tanaka" in page(admin, "/admin/attendees?q=Ai%00ko")
    assert "No registration matches" in page(admin, "/admin/attendees?q=" + "z" * 2000)


def test_attendee_pages_need_a_signed_in_organiser(client):
    registration = make_registration(make_event())
    db.session.commit()
    for path in ("/admin/attendees?q=aiko", f"/admin/registrations/{registration.id}",
                 "/admin/events/climate-finance-101/attendees/new"):
        response = client.get(path)
        assert response.status_code == 303 and "/admin/login" in response.headers["Location"]
    response = client.post(f"/admin/registrations/{registration.id}/cancel")
    assert response.status_code in (303, 400)
    assert reload(Registration, registration.id).status == "confirmed"


# --- a registration's page -----------------------------------------------------------------


def test_registration_page_shows_its_details_answer_mark_and_emails(admin, full):
    aiko = by_email("aiko@example.org")
    aiko.rsvp, aiko.rsvp_at = "tentative", NOW
    db.session.add(Message(registration=aiko, event=full, kind="confirmation", status="sent",
                           message_id="<1@example.org>", recipient=aiko.email, created_at=NOW,
                           due_at=NOW, sent_at=NOW, expires_at=full.ends_at))
    people.mark_undeliverable(aiko.email_key, "5.1.1 <aiko@example.org>: no such user", NOW)
    db.session.commit()
    body = page(admin, f"/admin/registrations/{aiko.id}")
    for text in ("Aiko Tanaka", "aiko@example.org", "City of Yokohama", "Japan", "Asia/Tokyo",
                 "tentative", "undeliverable", "5.1.1 &lt;aiko@example.org&gt;: no such user",
                 "confirmation", "sent", "Clear the mark", "Cancel the registration",
                 "Send again"):
        assert text in body, text
    assert "Move to a seat" not in body  # she has one
    chen = by_email("chen@example.org")
    waiting = page(admin, f"/admin/registrations/{chen.id}")
    assert "Number 2 on the waiting list." in waiting and "Move to a seat" in waiting
    assert admin.get("/admin/registrations/999999").status_code == 404
    assert admin.get("/admin/registrations/abc").status_code == 404
    # The event's attendee list links each row to its page.
    assert f'href="/admin/registrations/{aiko.id}"' in page(admin, f"/admin/events/{full.slug}")


# --- cancelling ------------------------------------------------------------------------------


def test_cancelling_frees_the_seat_for_the_first_waiting_and_emails_the_note_escaped(
        admin, full, app):
    aiko = by_email("aiko@example.org")
    path = f"/admin/registrations/{aiko.id}"
    response = post(admin, f"{path}/cancel", {"reason": "Duplicate\r\nof <b>another</b> & co"},
                    token_from=path)

    assert response.status_code == 303 and response.headers["Location"].endswith(path)
    assert by_email("aiko@example.org").status == "cancelled"
    assert by_email("ben@example.org").status == "confirmed"  # the first in the queue
    assert by_email("chen@example.org").status == "waitlisted"
    assert reload(Event, full.id).confirmed_count == 1
    [cancellation] = messages(kind="cancellation")
    assert cancellation.detail == {"by": "console",
                                   "reason": "Duplicate of <b>another</b> & co"}
    assert ("registration cancelled", f"registration {aiko.id}",
            {"event": full.slug, "was": "confirmed", "note": True}) in actions()
    db.session.commit()
    dispatch(NOW)
    [mail] = [m for m in outbox(app) if m["To"].addresses[0].username == "aiko"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "The organisers cancelled your registration." in text
    assert "Their note: Duplicate of <b>another</b> & co" in text
    assert "Their note: Duplicate of &lt;b&gt;another&lt;/b&gt; &amp; co" in html
    assert "<b>another" not in html
    assert "The organisers have cancelled this session" not in text
    [invite] = [part for part in mail.walk() if part.get_content_type() == "text/calendar"]
    assert invite.get_param("method") == "CANCEL"

    # The note may name the person: deleting their data deletes it too, once it was sent.
    from registration.retention import anonymise

    anonymise([by_email("aiko@example.org")], NOW)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Message, cancellation.id).detail == {"by": "console"}


def test_the_note_reaches_a_japanese_reader_in_japanese(admin, app):
    event = make_event()
    registration = make_registration(event, language="ja")
    event.confirmed_count = 1
    db.session.commit()
    path = f"/admin/registrations/{registration.id}"
    assert post(admin, f"{path}/cancel", {"reason": "会場変更のため"},
                token_from=path).status_code == 303
    db.session.commit()
    dispatch(NOW)
    [mail] = outbox(app)
    text = mail.get_body(("plain",)).get_content()
    assert "主催者がご登録をキャンセルしました。" in text
    assert "主催者からのメッセージ: 会場変更のため" in text


def test_cancelling_without_a_note_says_who_cancelled_and_quotes_nothing(admin, app, full):
    chen = by_email("chen@example.org")
    path = f"/admin/registrations/{chen.id}"
    assert post(admin, f"{path}/cancel", {"reason": "  "}, token_from=path).status_code == 303
    assert by_email("chen@example.org").status == "cancelled"
    assert by_email("ben@example.org").status == "waitlisted"  # no seat was freed
    [cancellation] = messages(kind="cancellation")
    assert cancellation.detail == {"by": "console"} and cancellation.ical_method is None
    db.session.commit()
    dispatch(NOW)
    [mail] = outbox(app)
    text = mail.get_body(("plain",)).get_content()
    assert "The organisers cancelled your registration." in text and "Their note" not in text


def test_a_note_too_long_or_with_controls_is_refused_and_nothing_changes(admin, full):
    aiko = by_email("aiko@example.org")
    path = f"/admin/registrations/{aiko.id}"
    for reason, words in (("x" * 501, "500 characters or fewer"),
                          ("bell \x07", "control characters")):
        response = post(admin, f"{path}/cancel", {"reason": reason}, token_from=path)
        assert response.status_code == 422
        assert words in response.get_data(as_text=True)
    assert by_email("aiko@example.org").status == "confirmed"
    assert messages() == [] and actions() == []


def test_cancelling_after_the_session_ended_is_refused_and_changes_nothing(admin, app):
    event = make_event(starts_at=NOW - timedelta(hours=3))
    registration = make_registration(event)
    db.session.commit()
    path = f"/admin/registrations/{registration.id}"
    response = post(admin, f"{path}/cancel", {"reason": ""}, token_from=path)
    assert response.status_code == 409
    assert "the session has ended" in response.get_data(as_text=True)
    assert reload(Registration, registration.id).status == "confirmed"
    assert messages() == [] and actions() == []
    again = post(admin, f"{path}/resend", {}, token_from=path)
    assert again.status_code == 409 and messages() == []


def test_every_action_needs_the_forms_csrf_token(admin, full):
    aiko, ben = by_email("aiko@example.org"), by_email("ben@example.org")
    people.mark_undeliverable(aiko.email_key, "5.1.1 gone", NOW)
    db.session.commit()
    for path in (f"/admin/registrations/{aiko.id}/cancel",
                 f"/admin/registrations/{aiko.id}/resend",
                 f"/admin/registrations/{ben.id}/promote",
                 f"/admin/registrations/{aiko.id}/clear-undeliverable",
                 f"/admin/events/{full.slug}/attendees/new"):
        response = admin.post(path, data={**form_data(email="new@example.org"),
                                          "over_capacity": "y", "reason": "x"})
        assert response.status_code == 400, path
    assert [r.status for r in db.session.scalars(
        sa.select(Registration).order_by(Registration.id))] == [
        "confirmed", "waitlisted", "waitlisted"]
    assert people.find(aiko.email_key).is_undeliverable
    assert messages() == [] and actions() == []


# --- re-sending ------------------------------------------------------------------------------


def test_resending_queues_the_confirmation_or_the_waiting_list_notice_again(admin, full):
    aiko, ben = by_email("aiko@example.org"), by_email("ben@example.org")
    for registration in (aiko, ben):
        path = f"/admin/registrations/{registration.id}"
        for _ in range(4):  # past the repeat sign-up's daily allowance of 3
            assert post(admin, f"{path}/resend", {}, token_from=path).status_code == 303
    assert [(m.registration_id, m.kind) for m in messages()] == (
        [(aiko.id, "confirmation")] * 4 + [(ben.id, "waitlisted")] * 4)
    assert messages(kind="confirmation")[0].ical_method == "REQUEST"
    assert ("confirmation re-sent", f"registration {ben.id}",
            {"event": full.slug, "kind": "waitlisted"}) in actions()


def test_a_cancelled_registration_has_nothing_to_resend(admin, full):
    registration = make_registration(full, email="gone@example.org", status="cancelled",
                                     cancelled_at=NOW)
    db.session.commit()
    path = f"/admin/registrations/{registration.id}"
    response = post(admin, f"{path}/resend", {}, token_from=path)
    assert response.status_code == 409
    assert "Nothing was sent" in response.get_data(as_text=True)
    assert messages() == [] and actions() == []


# --- a seat ahead of the queue ---------------------------------------------------------------


def test_a_free_seat_goes_to_the_chosen_person_and_the_first_in_queue_keeps_waiting(admin, full):
    full.capacity = 2  # a seat free while people wait (as with a kept capacity)
    db.session.commit()
    chen = by_email("chen@example.org")
    path = f"/admin/registrations/{chen.id}"
    response = post(admin, f"{path}/promote", {}, token_from=path)

    assert response.status_code == 303
    assert by_email("chen@example.org").status == "confirmed"
    assert by_email("chen@example.org").confirmed_at == NOW
    assert by_email("ben@example.org").status == "waitlisted"
    assert reload(Event, full.id).confirmed_count == 2
    kinds = [m.kind for m in messages() if m.registration_id == chen.id]
    assert kinds == ["promotion"]
    # Their reminders follow as each falls due, as for any seat holder.
    from flask import current_app

    from notifications.planner import reminder_slots
    from notifications.reminders import plan_and_commit

    for slot in reminder_slots(full.starts_at, current_app.config["REMINDER_OFFSETS"], NOW):
        plan_and_commit(slot.due_at)
    kinds = [m.kind for m in messages() if m.registration_id == chen.id]
    assert kinds.count("reminder") == 3
    assert ("moved to a seat", f"registration {chen.id}",
            {"event": full.slug, "over_capacity": False, "seats_taken": 2,
             "capacity": 2}) in actions()


def test_a_full_session_takes_one_more_only_with_the_over_capacity_box(admin, full):
    chen = by_email("chen@example.org")
    path = f"/admin/registrations/{chen.id}"
    refused = post(admin, f"{path}/promote", {}, token_from=path)
    assert refused.status_code == 409
    assert "every seat is taken" in refused.get_data(as_text=True)
    assert by_email("chen@example.org").status == "waitlisted"
    assert reload(Event, full.id).confirmed_count == 1
    assert messages() == [] and actions() == []

    response = post(admin, f"{path}/promote", {"over_capacity": "y"}, token_from=path)
    assert response.status_code == 303
    assert by_email("chen@example.org").status == "confirmed"
    assert by_email("ben@example.org").status == "waitlisted"
    event = reload(Event, full.id)
    assert (event.confirmed_count, event.capacity) == (2, 1)
    assert [m.kind for m in messages()][0] == "promotion"
    assert actions()[-1][2]["over_capacity"] is True
    # Someone with a seat is not moved again.
    again = post(admin, f"{path}/promote", {"over_capacity": "y"}, token_from=path)
    assert again.status_code == 409 and reload(Event, full.id).confirmed_count == 2


# --- adding by hand --------------------------------------------------------------------------


NEW_PATH = "/admin/events/climate-finance-101/attendees/new"


def test_an_organiser_adds_someone_who_gets_the_usual_confirmation(admin, organiser):
    event = make_event()
    body = page(admin, NEW_PATH)
    assert "I confirm that this person agreed" in body and 'name="website"' not in body
    response = post(admin, NEW_PATH, form_data(email="Dana@Example.org", name="Dana Li"))

    assert response.status_code == 303
    dana = by_email("Dana@example.org")
    assert (dana.name, dana.status, dana.email_key) == ("Dana Li", "confirmed",
                                                        "dana@example.org")
    assert dana.added_by_organiser_id == organiser.id
    assert reload(Event, event.id).confirmed_count == 1
    assert [m.kind for m in messages()][0] == "confirmation"
    assert ("attendee added", f"registration {dana.id}",
            {"event": event.slug, "status": "confirmed", "repeat": False}) in actions()
    assert f"added by {ORGANISER_EMAIL}" in page(admin, response.headers["Location"])


def test_adding_an_address_already_registered_adds_nobody_and_resends(admin, organiser):
    event = make_event()
    make_registration(event)
    db.session.commit()
    response = post(admin, NEW_PATH, form_data(email="AIKO.tanaka@example.org"))
    assert response.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1
    assert by_email("aiko.tanaka@example.org").added_by_organiser_id is None
    assert [m.kind for m in messages()] == ["confirmation"]
    assert actions()[-1][0] == "attendee added again"
    assert "already holds a place" in page(admin, response.headers["Location"])


def test_adding_with_a_bad_address_or_no_consent_is_refused_with_words(admin):
    make_event()
    response = post(admin, NEW_PATH, form_data(email="not-an-address@"), token_from=NEW_PATH)
    assert response.status_code == 422
    assert "Enter an email address in the correct format" in response.get_data(as_text=True)
    data = form_data(email="dana@example.org")
    del data["consent"]
    response = post(admin, NEW_PATH, data, token_from=NEW_PATH)
    assert response.status_code == 422
    assert "Confirm that you have this person" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0
    assert messages() == [] and actions() == []


def test_adding_to_a_session_that_ended_is_refused(admin):
    make_event(starts_at=NOW - timedelta(hours=3))
    response = post(admin, NEW_PATH, form_data(), token_from=NEW_PATH)
    assert response.status_code == 409
    assert "Nobody can be added: the session has ended." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0
    assert "Nobody can be added" in page(admin, NEW_PATH)  # said before the form is filled in


# --- clearing an undeliverable mark ----------------------------------------------------------


def test_clearing_the_mark_lets_the_dispatcher_send_to_the_address_again(admin, app, full):
    aiko = by_email("aiko@example.org")
    people.mark_undeliverable(aiko.email_key, "5.1.1 no such user", NOW)
    db.session.commit()
    path = f"/admin/registrations/{aiko.id}"
    assert post(admin, f"{path}/resend", {}, token_from=path).status_code == 303
    db.session.commit()
    assert dispatch(NOW).sent == 0  # the mark holds it back
    assert messages()[0].skip_reason == "bounced"

    response = post(admin, f"{path}/clear-undeliverable", {}, token_from=path)
    assert response.status_code == 303
    assert not people.find(aiko.email_key).is_undeliverable
    assert ("undeliverable mark cleared", f"registration {aiko.id}",
            {"event": full.slug, "reason": "5.1.1 no such user"}) in actions()
    assert post(admin, f"{path}/resend", {}, token_from=path).status_code == 303
    db.session.commit()
    assert dispatch(NOW).sent == 1
    assert len(outbox(app)) == 1
    # With no mark left, clearing again is refused and changes nothing.
    again = post(admin, f"{path}/clear-undeliverable", {}, token_from=path)
    assert again.status_code == 409
    assert [a for a, _, _ in actions()].count("undeliverable mark cleared") == 1


def test_the_attendee_pages_have_one_h1_their_own_title_and_tables_in_named_regions(admin, full):
    from tests.test_organisers_pages import outline

    aiko = by_email("aiko@example.org")
    paths = ("/admin/attendees", "/admin/attendees?q=example", f"/admin/registrations/{aiko.id}",
             NEW_PATH)
    titles = set()
    for path in paths:
        response = admin.get(path)
        parsed = outline(response)
        assert parsed.h1 == 1 and parsed.skip_links == 1 and "Console" in parsed.navs, path
        assert parsed.title.strip().endswith("· Organisers · Virtual Forum"), path
        titles.add(parsed.title.strip())
        html = response.get_data(as_text=True)
        assert html.count("<table") == html.count('class="table-scroll"'), path
    assert len(titles) == len(paths)


def test_cancelling_one_registration_of_a_cancelled_session_sends_nothing_more(admin, full):
    full.status = "cancelled"
    db.session.commit()
    aiko = by_email("aiko@example.org")
    path = f"/admin/registrations/{aiko.id}"
    response = post(admin, f"{path}/cancel", {"reason": "tidying up"}, token_from=path)
    assert response.status_code == 303
    assert "no further email" in page(admin, path)
    assert by_email("aiko@example.org").status == "cancelled"
    assert messages() == []
    assert by_email("ben@example.org").status == "waitlisted"  # nobody is seated at it


def test_the_page_of_a_registration_whose_data_was_deleted_shows_no_person_and_no_actions(
        admin):
    event = make_event()
    registration = make_registration(event, name="", email="", email_key="deleted:1",
                                     organisation="", status="cancelled", cancelled_at=NOW,
                                     anonymised_at=NOW)
    db.session.commit()
    body = page(admin, f"/admin/registrations/{registration.id}")
    assert f"Registration {registration.id}" in body and "personal data was deleted" in body
    assert "/cancel" not in body and "/resend" not in body
    assert "(data deleted)" in page(admin, f"/admin/events/{event.slug}")
