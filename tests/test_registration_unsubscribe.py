"""The one-click unsubscribe link of reminders and follow-ups (RFC 8058): a POST without cookie
or CSRF token stops them and keeps the seat; a GET changes nothing; the link opens nothing else."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications import planner
from notifications.claims import skip_reason
from notifications.dispatcher import dispatch
from notifications.models import Message, MessageKind, MessageStatus
from notifications.reminders import plan_and_commit
from registration import changes, services, tokens
from registration.models import Event
from tests.conftest import NOW, make_event, make_registration

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def seat_holder(language="en"):
    """A confirmed registration with its confirmation and follow-up planned, and the week's
    reminder written (as at its due time)."""
    event = make_event(recording_url="https://video.example.org/1")
    event.confirmed_count = 1
    registration = make_registration(event, language=language)
    planner.plan_new_registration(registration, NOW)
    db.session.commit()
    plan_and_commit(week_due(event))
    return registration


def week_due(event):
    return event.starts_at - timedelta(days=7)


def plan_every_reminder(event):
    """The dispatch step's planning at each reminder's due time."""
    for slot in planner.reminder_slots(event.starts_at, planner.parse_offsets("7d,1d,1h"),
                                       after=NOW):
        plan_and_commit(slot.due_at)


def messages(registration, *kinds):
    query = sa.select(Message).where(Message.registration_id == registration.id)
    if kinds:
        query = query.where(Message.kind.in_(kinds))
    return db.session.scalars(query.order_by(Message.id)
                              .execution_options(populate_existing=True)).all()


def path(registration):
    return f"/u/{tokens.unsubscribe_token(registration)}"


@pytest.mark.parametrize("encoding", ["application/x-www-form-urlencoded",
                                      "multipart/form-data"])  # RFC 8058's own example
def test_one_click_post_without_cookie_or_csrf_stops_reminders_and_keeps_the_seat(app, encoding):
    registration = seat_holder()
    kinds = (MessageKind.REMINDER, MessageKind.FOLLOW_UP)
    assert len(messages(registration, *kinds)) == 2  # the week's reminder, and the recording
    client = app.test_client(use_cookies=False)

    response = client.post(path(registration), data=ONE_CLICK, content_type=encoding)

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    page = response.get_data(as_text=True)
    assert "You will get no more reminders for “Climate finance 101”; your place is kept." in page
    stopped = messages(registration, *kinds)
    assert {(m.status, m.skip_reason) for m in stopped} == {("skipped", "unsubscribed")}
    db.session.refresh(registration)
    assert registration.status == "confirmed" and registration.unsubscribed_at == NOW
    assert db.session.get(Event, registration.event_id).confirmed_count == 1
    [confirmation] = messages(registration, MessageKind.CONFIRMATION)
    assert confirmation.status == "pending"  # transactional emails are not touched
    # A second press (or a mail client's retry) is as good as the first.
    assert client.post(path(registration), data=ONE_CLICK).status_code == 200
    # The reminders still to come are never written for them.
    plan_every_reminder(registration.event)
    assert len(messages(registration, MessageKind.REMINDER)) == 1


def test_after_unsubscribing_updates_and_cancellations_still_go_and_no_reminder_comes_back(app):
    registration = seat_holder()
    app.test_client(use_cookies=False).post(path(registration), data=ONE_CLICK)
    assert dispatch(NOW).sent == 1  # the confirmation
    event = registration.event
    changes.change_event(event, {"starts_at": event.starts_at + timedelta(days=1),
                                 "ends_at": event.ends_at + timedelta(days=1)}, NOW)
    # The recording link set again plans no follow-up for them either.
    assert planner.plan_follow_up(registration, NOW) is None
    db.session.commit()
    plan_every_reminder(event)
    assert all(m.status == "skipped" for m in messages(registration, MessageKind.REMINDER))
    assert dispatch(NOW).sent == 1
    [update] = messages(registration, MessageKind.UPDATE)
    assert update.status == MessageStatus.SENT

    services.cancel(registration, NOW)
    db.session.commit()
    assert dispatch(NOW).sent == 1
    [cancellation] = messages(registration, MessageKind.CANCELLATION)
    assert cancellation.status == MessageStatus.SENT


def test_a_reminder_a_dispatcher_held_as_the_link_was_used_is_skipped_as_unsubscribed(app):
    registration = seat_holder()
    reminder = messages(registration, MessageKind.REMINDER)[0]
    assert skip_reason(reminder, reminder.due_at) is None
    registration.unsubscribed_at = NOW
    assert skip_reason(reminder, reminder.due_at) == "unsubscribed"
    [confirmation] = messages(registration, MessageKind.CONFIRMATION)
    assert skip_reason(confirmation, NOW) is None


def test_get_changes_nothing_and_shows_a_button_that_does_it(app):
    registration = seat_holder()
    before = [(m.id, m.status) for m in messages(registration)]

    response = app.test_client(use_cookies=False).get(path(registration))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert '<form method="post">' in page
    assert '<button type="submit" name="List-Unsubscribe" value="One-Click">' in page
    assert "csrf_token" not in page
    assert [(m.id, m.status) for m in messages(registration)] == before
    db.session.refresh(registration)
    assert registration.unsubscribed_at is None


def test_the_page_is_in_the_registrants_language(app):
    registration = seat_holder(language="ja")
    client = app.test_client(use_cookies=False)
    assert "リマインダーを停止する" in client.get(path(registration)).get_data(as_text=True)
    done = client.post(path(registration), data=ONE_CLICK).get_data(as_text=True)
    assert "お席はそのまま確保されています" in done


def test_a_post_without_the_one_click_body_changes_nothing(app):
    registration = seat_holder()
    client = app.test_client(use_cookies=False)
    for data in ({}, {"List-Unsubscribe": "Yes"}):
        assert client.post(path(registration), data=data).status_code == 400
    assert all(m.status == "pending" for m in messages(registration))


def test_a_bad_token_is_404(app):
    registration = seat_holder()
    client = app.test_client(use_cookies=False)
    token = tokens.unsubscribe_token(registration)
    for bad in (token[:-2] + "xx", f"{registration.id + 1}.{token.partition('.')[2]}",
                token.partition(".")[2], "1", "x" * 200):
        assert client.get(f"/u/{bad}").status_code == 404, bad
        assert client.post(f"/u/{bad}", data=ONE_CLICK).status_code == 404, bad
    assert all(m.status == "pending" for m in messages(registration))


def test_the_unsubscribe_token_opens_no_manage_page_and_the_manage_token_unsubscribes_nothing(
        app):
    registration = seat_holder()
    client = app.test_client(use_cookies=False)
    unsubscribe, manage = tokens.unsubscribe_token(registration), tokens.manage_token(registration)
    assert unsubscribe != manage
    assert client.get(f"/r/{manage}").status_code == 200  # the manage link itself works
    for page in ("", "/cancel", "/delete", "/invite.ics", "/cancelled"):
        assert client.get(f"/r/{unsubscribe}{page}").status_code == 404, page
    # Nor does it act: with the CSRF check out of the way, the token itself is refused.
    app.config["WTF_CSRF_ENABLED"] = False
    for page in ("/cancel", "/delete"):
        assert client.post(f"/r/{unsubscribe}{page}").status_code == 404, page
    assert client.post(f"/u/{manage}", data=ONE_CLICK).status_code == 404
    db.session.refresh(registration)
    assert registration.status == "confirmed" and registration.unsubscribed_at is None


def test_a_new_nonce_revokes_the_unsubscribe_link_too(app):
    registration = seat_holder()
    old = path(registration)
    tokens.issue_token(registration)
    db.session.commit()
    client = app.test_client(use_cookies=False)
    assert client.get(old).status_code == 404
    assert client.get(path(registration)).status_code == 200


def test_a_cancelled_registration_is_told_nothing_of_a_place_kept(app):
    registration = seat_holder()
    services.cancel(registration, NOW)
    db.session.commit()
    response = app.test_client(use_cookies=False).post(path(registration), data=ONE_CLICK)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You will get no more reminders for “Climate finance 101”." in page
    assert "your place is kept" not in page
