"""Reminders written when they fall due: who gets one, what the row carries, exactly once
whatever runs at the same time, and what a reschedule changes."""

import re
import threading
from datetime import timedelta

import sqlalchemy as sa

from extensions import db
from notifications.models import Message, MessageKind
from notifications.planner import parse_offsets, reminder_slots
from notifications.reminders import (
    SETTLED_AFTER,
    _plan_slot,
    current_slot,
    plan_and_commit,
    plan_due_reminders,
    planned_for,
    slot_key,
)
from registration import changes
from registration.models import Event
from tests.conftest import NOW, make_event, make_registration

DEFAULT = parse_offsets("7d,1d,1h")


def reminder_rows():
    return db.session.scalars(sa.select(Message).where(Message.kind == MessageKind.REMINDER)
                              .order_by(Message.id)
                              .execution_options(populate_existing=True)).all()


def week_due(event):
    return event.starts_at - timedelta(days=7)


def test_a_slot_is_written_once_however_often_the_planner_runs(app):
    event = make_event()
    make_registration(event)
    make_registration(event, email="ben@example.org", email_key="ben@example.org")
    db.session.commit()
    assert plan_and_commit(week_due(event) - timedelta(minutes=1)) == 0  # not due yet
    assert plan_and_commit(week_due(event)) == 2
    assert plan_and_commit(week_due(event) + timedelta(hours=3)) == 0
    assert len(reminder_rows()) == 2


def test_the_row_carries_the_slot_version_detail_and_a_message_id_of_its_own(app):
    event = make_event()
    aiko = make_registration(event, ical_sequence=4)
    ben = make_registration(event, email="ben@example.org", email_key="ben@example.org")
    db.session.commit()
    [hour] = [slot for slot in reminder_slots(event.starts_at, DEFAULT, NOW)
              if slot.offset.label == "1h"]
    plan_and_commit(hour.due_at)
    rows = {row.registration_id: row for row in reminder_rows()}
    first = rows[aiko.id]
    assert (first.status, first.recipient, first.ical_method) == ("pending", aiko.email, None)
    assert first.ical_sequence == 4 and rows[ben.id].ical_sequence == 0
    assert (first.due_at, first.expires_at) == (hour.due_at, event.starts_at)
    assert first.detail == {"offset": "1h", "is_last": True}
    assert first.slot == f"3600s@{event.starts_at.isoformat()}"
    assert first.created_at == hour.due_at
    ids = [row.message_id for row in rows.values()]
    assert len(set(ids)) == 2
    assert all(re.fullmatch(r"<[0-9a-f]{32}\.\d+@example\.org>", mid) for mid in ids)


def test_only_seat_holders_who_still_want_reminders_get_one(app):
    event = make_event()
    seat = make_registration(event)
    for n, fields in enumerate(({"status": "waitlisted", "confirmed_at": None},
                                {"status": "cancelled"},
                                {"unsubscribed_at": NOW},
                                {"anonymised_at": NOW},
                                {"confirmed_at": week_due(event)})):  # a seat as it fell due
        make_registration(event, email=f"p{n}@example.org", email_key=f"p{n}@example.org",
                          **fields)
    cancelled = make_event(slug="cancelled", status="cancelled")
    make_registration(cancelled)
    db.session.commit()
    plan_and_commit(week_due(event))
    assert [row.registration_id for row in reminder_rows()] == [seat.id]


def test_sessions_outside_every_window_get_nothing(app):
    make_registration(make_event(starts_at=NOW + timedelta(days=30)))
    make_registration(make_event(slug="over", starts_at=NOW - timedelta(hours=3)))
    db.session.commit()
    assert plan_due_reminders(NOW) == 0
    assert reminder_rows() == []


def test_a_moved_session_gets_its_reminders_afresh_for_the_new_time(app):
    event = make_event()
    seat = make_registration(event)
    db.session.commit()
    plan_and_commit(week_due(event))
    moved_at = week_due(event) + timedelta(hours=1)
    new_start = event.starts_at + timedelta(days=3)
    changes.change_event(event, {"starts_at": new_start,
                                 "ends_at": new_start + timedelta(hours=1)}, moved_at)
    db.session.commit()
    assert event.time_changed_at == moved_at
    # The week's reminder for the new time is due only later: written then, under a new key.
    assert plan_and_commit(moved_at) == 0
    assert plan_and_commit(new_start - timedelta(days=7)) == 1
    old, new = reminder_rows()
    assert (old.status, old.skip_reason) == ("skipped", "superseded")
    assert new.slot == f"604800s@{new_start.isoformat()}" and new.ical_sequence == 1
    assert planned_for(seat, new.due_at) == [
        slot for slot in reminder_slots(new_start, DEFAULT, new.due_at)]


def test_a_reschedule_after_a_slots_due_time_does_not_send_that_slot(app):
    event = make_event()
    make_registration(event)
    db.session.commit()
    moved_at = event.starts_at - timedelta(days=3)
    new_start = event.starts_at - timedelta(days=2)  # its day reminder fell due before the move
    changes.change_event(event, {"starts_at": new_start,
                                 "ends_at": new_start + timedelta(hours=1)}, moved_at)
    db.session.commit()
    for moment in (moved_at, new_start - timedelta(days=1), new_start - timedelta(hours=1)):
        plan_and_commit(moment)
    assert [row.detail["offset"] for row in reminder_rows()] == ["1h"]


def test_two_planners_at_once_write_each_reminder_exactly_once(app):
    events = [make_event(slug=f"s{n}", starts_at=NOW + timedelta(days=8 + n / 24))
              for n in range(6)]
    for event in events:
        for n in range(25):
            make_registration(event, email=f"p{n}@example.org", email_key=f"p{n}@example.org")
    db.session.commit()
    now = NOW + timedelta(days=1, hours=6)  # every session's week reminder is due
    db.session.remove()
    start = threading.Barrier(2)
    written, errors = [], []

    def planner():
        try:
            with app.app_context():
                start.wait()
                written.append(plan_and_commit(now))
                db.session.remove()
        except Exception as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(written) == 6 * 25
    keys = db.session.execute(sa.select(Message.registration_id, Message.slot)).all()
    assert len(keys) == len(set(keys)) == 6 * 25


def test_a_planner_that_meets_another_ones_uncommitted_rows_writes_none_of_them(app):
    event = make_event()
    make_registration(event)
    db.session.commit()
    assert plan_due_reminders(week_due(event)) == 1  # not committed yet
    result = []

    def other():
        with app.app_context():
            result.append(plan_and_commit(week_due(event)))
            db.session.remove()

    thread = threading.Thread(target=other)
    thread.start()  # on PostgreSQL it waits on the unique index; on SQLite on the write lock
    db.session.commit()
    thread.join()
    assert result == [0]
    assert len(reminder_rows()) == 1


def test_a_seat_taken_as_a_reminder_fell_due_still_gets_it_then_the_slot_is_settled(app):
    event = make_event()
    make_registration(event)
    db.session.commit()
    due = week_due(event)
    assert plan_and_commit(due) == 1
    # A sign-up in flight as the reminder fell due commits a moment after that pass.
    make_registration(event, email="ben@example.org", email_key="ben@example.org",
                      confirmed_at=due - timedelta(seconds=1))
    db.session.commit()
    assert plan_and_commit(due + timedelta(minutes=1)) == 1
    assert plan_and_commit(due + SETTLED_AFTER) == 0
    assert event.reminders_settled == f"604800s@{event.starts_at.isoformat()}"
    # Settled: later passes run no statement over its seat holders (this row could not be
    # there in life: it only shows that the pass is skipped).
    make_registration(event, email="chen@example.org", email_key="chen@example.org",
                      confirmed_at=due - timedelta(seconds=1))
    db.session.commit()
    assert plan_and_commit(due + SETTLED_AFTER + timedelta(hours=1)) == 0
    # The next slot is planned as usual.
    assert plan_and_commit(event.starts_at - timedelta(days=1)) == 3


def test_a_reminder_written_ahead_and_superseded_before_it_was_due_is_written_when_due(app):
    # As the older code wrote it at sign-up (migration 0012 gave it its slot): pending, ahead.
    event = make_event()
    seat = make_registration(event)
    db.session.commit()
    [day] = [slot for slot in reminder_slots(event.starts_at, DEFAULT, NOW)
             if slot.offset.label == "1d"]
    db.session.add(Message(
        registration_id=seat.id, event_id=event.id, kind=MessageKind.REMINDER, status="pending",
        message_id="<ahead@example.org>", recipient=seat.email, ical_sequence=0, created_at=NOW,
        due_at=day.due_at, expires_at=day.expires_at, detail={"offset": "1d", "is_last": False},
        slot=slot_key(day.offset, event.starts_at)))
    db.session.commit()
    # A new title: a new version of the invite supersedes the row written ahead ...
    changes.change_event(event, {"title": "Climate finance 102"}, day.due_at - timedelta(days=2))
    db.session.commit()
    assert plan_and_commit(day.due_at) == 1
    ahead, written = reminder_rows()
    assert (ahead.status, ahead.skip_reason, ahead.slot) == ("skipped", "superseded", None)
    # ... and the reminder goes out all the same, at its time, with the new version.
    assert (written.status, written.ical_sequence) == ("pending", 1)
    assert written.slot == slot_key(day.offset, event.starts_at)


def test_a_reminder_renamed_in_the_settings_is_not_sent_again(app):
    event = make_event()
    make_registration(event)
    db.session.commit()
    due = event.starts_at - timedelta(days=1)
    app.config["REMINDER_OFFSETS"] = DEFAULT
    assert plan_and_commit(due) == 1
    # The operator writes the day reminder as 24h: the same reminder, already written.
    app.config["REMINDER_OFFSETS"] = parse_offsets("7d,24h,1h")
    assert plan_and_commit(due + timedelta(minutes=1)) == 0
    assert len(reminder_rows()) == 1


def test_a_planner_holding_a_session_read_before_it_moved_writes_nothing_for_the_old_time(app):
    event = make_event()
    make_registration(event)
    db.session.commit()
    due = week_due(event)
    read_before = db.session.get(Event, event.id)  # the planner's candidate, as it read it
    slot = current_slot(read_before, DEFAULT, due)
    # Another request moves the session in between (the ORM object here is not refreshed).
    db.session.execute(sa.update(Event).where(Event.id == event.id)
                       .values(starts_at=event.starts_at + timedelta(days=1),
                               ends_at=event.ends_at + timedelta(days=1))
                       .execution_options(synchronize_session=False))
    assert _plan_slot(read_before, slot, DEFAULT, due) == 0
    assert reminder_rows() == []


def test_a_registrations_planned_reminders_are_those_not_written_and_none_once_it_opts_out(app):
    event = make_event()
    seat = make_registration(event)
    db.session.commit()
    assert [slot.offset.label for slot in planned_for(seat, NOW)] == ["7d", "1d", "1h"]
    plan_and_commit(week_due(event))
    assert [slot.offset.label for slot in planned_for(seat, week_due(event))] == ["1d", "1h"]
    seat.unsubscribed_at = week_due(event)
    db.session.commit()
    assert planned_for(seat, week_due(event)) == []
