"""Changing a published session: reschedules, edits, cancellation, more seats and the
recording link, through the one service the importer (and later the console) use."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import vobject
from flask import current_app

from extensions import db
from notifications.models import Message
from notifications.planner import reminder_slots
from notifications.reminders import plan_and_commit
from registration import changes, services
from registration.models import Registration
from tests.conftest import NOW, dispatch_at, make_event, outbox, sign_up


def invite_of(parsed):
    part = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    return part.get_param("method"), vobject.readOne(part.get_content())


def registration(event, address):
    return services.find_active(event, address)


def messages(kind=None, status=None):
    query = sa.select(Message).order_by(Message.id)
    if kind:
        query = query.where(Message.kind == kind)
    if status:
        query = query.where(Message.status == status)
    return db.session.scalars(query).all()


@pytest.fixture
def full_event(client):
    """A session with one seat taken and one person waiting; every email so far sent."""
    event = make_event(capacity=1, starts_at=NOW + timedelta(days=20))
    sign_up(client, event.slug, email="seat@example.org")
    sign_up(client, event.slug, email="waiting@example.org")
    dispatch_at(NOW)
    return event


def plan_through(event, since):
    """The dispatch step's planning at each reminder's due time after `since`."""
    for slot in reminder_slots(event.starts_at, current_app.config["REMINDER_OFFSETS"],
                               after=since):
        plan_and_commit(slot.due_at)


def change(event, now=NOW + timedelta(hours=1), **fields):
    result = changes.change_event(event, fields, now)
    db.session.commit()
    return result


def test_reschedule_sends_an_update_with_same_uid_higher_sequence_new_time_and_old_named(
    app, full_event
):
    old_start = full_event.starts_at
    new_start = old_start + timedelta(days=2, hours=3)
    result = change(full_event, starts_at=new_start, ends_at=new_start + timedelta(hours=1))
    assert result.notified == 2
    dispatch_at(NOW + timedelta(hours=1))
    confirmation, waitlisted, update, notice = outbox(app)
    _, first = invite_of(confirmation)
    method, second = invite_of(update)
    assert method == "REQUEST"
    assert second.vevent.uid.value == first.vevent.uid.value
    assert int(second.vevent.sequence.value) > int(first.vevent.sequence.value)
    assert second.vevent.dtstart.value == new_start
    text = update.get_body(("plain",)).get_content()
    assert "New time:" in text and "It was:" in text and "Japan Standard Time" in text
    assert full_event.join_url in text
    # The waiting list hears of the new time in a plain notice: no invite, no join link.
    assert str(notice["To"]).endswith("<waiting@example.org>")
    assert not any(p.get_content_type() == "text/calendar" for p in notice.walk())
    assert full_event.join_url not in notice.as_string()
    assert "New time:" in notice.get_body(("plain",)).get_content()


def test_reschedule_supersedes_pending_reminders_and_plans_them_for_the_new_time(full_event):
    seat = registration(full_event, "seat@example.org")
    week_due = full_event.starts_at - timedelta(days=7)
    plan_and_commit(week_due)
    before = {m.id for m in messages("reminder", "pending")}
    assert len(before) == 1
    new_start = full_event.starts_at + timedelta(days=7)
    moved_at = week_due + timedelta(hours=1)
    change(full_event, now=moved_at, starts_at=new_start, ends_at=new_start + timedelta(hours=1))
    old = [m for m in messages("reminder") if m.id in before]
    assert {(m.status, m.skip_reason) for m in old} == {("skipped", "superseded")}
    plan_through(full_event, since=moved_at)
    fresh = [m for m in messages("reminder", "pending") if m.registration_id == seat.id]
    assert [m.due_at for m in fresh] == [new_start - timedelta(days=7),
                                         new_start - timedelta(days=1),
                                         new_start - timedelta(hours=1)]
    assert all(m.ical_sequence == seat.ical_sequence == 1 for m in fresh)
    assert all(m.slot.endswith(f"@{new_start.isoformat()}") for m in fresh)


def test_reschedule_close_to_the_start_replans_only_reminders_still_ahead(full_event):
    now = full_event.starts_at - timedelta(days=3)
    new_start = full_event.starts_at + timedelta(hours=12)
    change(full_event, now=now, starts_at=new_start, ends_at=new_start + timedelta(hours=1))
    # The week's reminder for the new time fell due before the move: its window is open at
    # `now`, but the update just told them of the new time, so it is not written.
    plan_and_commit(now)
    plan_through(full_event, since=now)
    offsets = [m.detail["offset"] for m in messages("reminder", "pending")]
    assert offsets == ["1d", "1h"]


def test_moving_a_session_into_the_past_is_refused_and_changes_nothing(full_event):
    before = len(messages())
    with pytest.raises(changes.ChangeRefused, match="into the past"):
        change(full_event, starts_at=NOW - timedelta(days=1), ends_at=NOW)
    db.session.rollback()
    db.session.refresh(full_event)
    assert full_event.starts_at == NOW + timedelta(days=20)
    assert len(messages()) == before


def test_the_service_refuses_a_capacity_below_the_seats_taken_unless_told_to_keep_them(
        full_event):
    full_event.capacity = 2
    db.session.commit()
    with pytest.raises(changes.ChangeRefused,
                       match="capacity 0 is below the 1 seat already taken") as refused:
        change(full_event, capacity=0)
    assert refused.value.refusal.field == "capacity"
    db.session.rollback()
    assert full_event.capacity == 2

    changes.change_event(full_event, {"capacity": 0}, NOW, keep_seats=True)
    db.session.commit()

    assert (full_event.capacity, full_event.confirmed_count) == (0, 1)
    assert registration(full_event, "seat@example.org").status == "confirmed"


@pytest.mark.parametrize("field, value", [
    ("title", "Climate finance 102"),
    ("description", "Now with a case from Nairobi."),
    ("join_url", "https://meet.example.org/j/999"),
])
def test_a_change_of_title_description_or_join_link_sends_an_update(app, full_event, field,
                                                                      value):
    change(full_event, **{field: value})
    updates = messages("update")
    # Only the seat holder: the waiting list hears only of a new time.
    assert [(m.recipient, m.ical_method) for m in updates] == [("seat@example.org", "REQUEST")]
    assert registration(full_event, "seat@example.org").ical_sequence == 1
    dispatch_at(NOW + timedelta(hours=1))
    _, calendar = invite_of(outbox(app)[-1])
    assert int(calendar.vevent.sequence.value) == 1


def test_every_update_raises_the_sequence_again(full_event):
    change(full_event, title="Second title")
    change(full_event, title="Third title")
    seat = registration(full_event, "seat@example.org")
    assert seat.ical_sequence == 2
    updates = messages("update")
    assert [(m.ical_sequence, m.status) for m in updates if m.ical_method] == [
        (1, "skipped"), (2, "pending")]


@pytest.mark.parametrize("field, value", [("capacity", 1), ("recording_url",
                                                             "https://video.example.org/r/1")])
def test_a_change_of_capacity_or_recording_link_sends_no_update(full_event, field, value):
    change(full_event, **{field: value})
    assert messages("update") == []


def test_more_seats_promote_the_waiting_list(app, full_event):
    result = change(full_event, capacity=2)
    assert result.promoted == 1
    waiting = registration(full_event, "waiting@example.org")
    assert waiting.status == "confirmed"
    assert [m.kind for m in messages() if m.registration_id == waiting.id and
            m.status == "pending"] == ["promotion"]
    plan_through(full_event, since=NOW + timedelta(hours=1))
    assert [m.kind for m in messages() if m.registration_id == waiting.id and
            m.status == "pending"] == ["promotion", "reminder", "reminder", "reminder"]


def test_cancelled_event_sends_cancel_to_seats_a_notice_to_the_waiting_list_and_nothing_else(
    app, client, full_event
):
    week_due = full_event.starts_at - timedelta(days=7)
    plan_and_commit(week_due)
    change(full_event, now=week_due, status="cancelled")
    assert {(m.status, m.skip_reason) for m in messages("reminder")} == {
        ("skipped", "event cancelled")}
    dispatch_at(week_due)
    cancel_mail, notice = outbox(app)[2:]
    method, calendar = invite_of(cancel_mail)
    assert method == "CANCEL"
    assert calendar.vevent.status.value == "CANCELLED"
    assert int(calendar.vevent.sequence.value) == 1
    assert str(notice["To"]).endswith("<waiting@example.org>")
    assert "organisers have cancelled" in notice.get_body(("plain",)).get_content()
    assert not any(p.get_content_type() == "text/calendar" for p in notice.walk())

    # Nothing more is ever sent for it: later edits and the recording change nothing.
    change(full_event, now=week_due, title="Renamed",
           recording_url="https://video.example.org/r/1")
    plan_through(full_event, since=week_due)  # no reminder is written for it either
    dispatch_at(full_event.ends_at + timedelta(days=1))
    assert len(outbox(app)) == 4
    page = client.get(f"/events/{full_event.slug}").get_data(as_text=True)
    assert "was cancelled" in page


def test_a_cancelled_event_stays_cancelled(full_event):
    change(full_event, status="cancelled")
    with pytest.raises(changes.ChangeRefused, match="publish a new session instead"):
        change(full_event, status="scheduled")


def test_follow_up_with_the_recording_goes_once_to_each_seat_holder_after_the_end(
    app, full_event
):
    change(full_event, recording_url="https://video.example.org/r/1")
    [follow_up] = messages("follow_up")
    assert follow_up.recipient == "seat@example.org"
    assert follow_up.due_at == full_event.ends_at
    # Setting or changing the link again sends nothing more.
    change(full_event, recording_url="https://video.example.org/r/2",
           now=full_event.ends_at + timedelta(hours=1))
    change(full_event, recording_url="https://video.example.org/r/1",
           now=full_event.ends_at + timedelta(hours=2))
    assert len(messages("follow_up")) == 1
    dispatch_at(full_event.ends_at + timedelta(hours=3))
    mail = outbox(app)[-1]
    assert str(mail["Subject"]) == "Recording: Climate finance 101"
    assert "https://video.example.org/r/1" in mail.get_body(("plain",)).get_content()


def test_recording_set_after_the_end_sends_the_follow_up_at_once(app, full_event):
    later = full_event.ends_at + timedelta(days=2)
    change(full_event, now=later, recording_url="https://video.example.org/r/1")
    [follow_up] = messages("follow_up")
    assert follow_up.due_at == later
    assert dispatch_at(later).sent >= 1


def test_import_reschedule_goes_through_the_same_path(app, runner, full_event, tmp_path):
    programme = tmp_path / "programme.csv"
    programme.write_text(
        "slug,title,starts_at,ends_at,timezone\n"
        f"{full_event.slug},Climate finance 101,2025-07-20T10:00,2025-07-20T11:30,Europe/Berlin\n"
    )
    app.config["CLOCK"] = lambda: NOW + timedelta(hours=1)
    result = runner.invoke(args=["import-programme", str(programme)])
    assert result.exit_code == 0, result.output
    assert "2 registrants to be told" in result.output
    assert [m.recipient for m in messages("update")] == ["seat@example.org",
                                                         "waiting@example.org"]


def test_import_moving_a_session_into_the_past_is_refused_with_its_line(app, runner,
                                                                        full_event, tmp_path):
    programme = tmp_path / "programme.csv"
    programme.write_text(
        "slug,title,starts_at,ends_at\n"
        f"{full_event.slug},Climate finance 101,2025-06-01T10:00Z,2025-06-01T11:00Z\n"
    )
    result = runner.invoke(args=["import-programme", str(programme)])
    assert result.exit_code != 0
    assert "line 2:" in result.output and "into the past" in result.output
    assert messages("update") == []


def test_registrations_are_left_as_they_were_when_an_event_is_cancelled(full_event):
    change(full_event, status="cancelled")
    statuses = sorted(db.session.scalars(sa.select(Registration.status)))
    assert statuses == ["confirmed", "waitlisted"]


def test_public_calendar_sequence_rises_with_each_change_people_must_hear_of(client,
                                                                              full_event):
    def public_sequence():
        body = client.get(f"/events/{full_event.slug}.ics").get_data(as_text=True)
        return int(vobject.readOne(body).vevent.sequence.value)

    assert public_sequence() == 0
    change(full_event, title="Climate finance 102")
    assert public_sequence() == 1
    change(full_event, capacity=3)
    assert public_sequence() == 1
    change(full_event, status="cancelled")
    assert public_sequence() == 2


def test_a_follow_up_waits_for_the_new_end_when_the_session_moves_later(full_event):
    change(full_event, recording_url="https://video.example.org/r/1")
    new_start = full_event.starts_at + timedelta(days=6)
    change(full_event, starts_at=new_start, ends_at=new_start + timedelta(hours=2))
    [follow_up] = messages("follow_up")
    assert follow_up.due_at == new_start + timedelta(hours=2)
    dispatch_at(new_start)  # after the old end, before the new one
    db.session.refresh(follow_up)
    assert follow_up.status == "pending"


def test_removing_the_recording_link_skips_the_unsent_follow_ups(full_event):
    change(full_event, recording_url="https://video.example.org/r/1")
    change(full_event, recording_url=None)
    assert [(m.status, m.skip_reason) for m in messages("follow_up")] == [
        ("skipped", "recording removed")]


def test_someone_whose_confirmation_has_not_gone_yet_gets_it_with_the_new_details(app, client):
    event = make_event(starts_at=NOW + timedelta(days=20))
    sign_up(client, event.slug)  # not dispatched yet
    change(event, title="Climate finance 102")
    pending = [(m.kind, m.ical_sequence) for m in messages(status="pending")
               if m.kind != "reminder"]
    assert pending == [("confirmation", 1)]
    dispatch_at(NOW + timedelta(hours=1))
    [mail] = outbox(app)
    assert str(mail["Subject"]) == "Confirmed: Climate finance 102"


def test_an_attendee_cancelling_after_the_organisers_did_gets_no_second_cancellation(full_event):
    change(full_event, status="cancelled")
    seat = registration(full_event, "seat@example.org")
    assert services.cancel(seat, NOW + timedelta(hours=2)) is True
    db.session.commit()
    assert len(messages("cancellation")) == 2  # the organisers' two, nothing more
    assert seat.status == "cancelled"
