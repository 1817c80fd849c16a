"""Reminder planning: which reminders a registration gets, when each is due, how long it may
wait, and what a late sign-up, the waiting list or an outage changes."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app import create_app
from extensions import db
from notifications.models import Message
from notifications.planner import parse_offsets, reminder_slots
from notifications.reminders import plan_and_commit
from registration import services
from tests.conftest import NOW, dispatch_at, make_event, outbox, sign_up

DEFAULT = parse_offsets("7d,1d,1h")


def reminders(registration_id=None, status=None):
    query = sa.select(Message).where(Message.kind == "reminder").order_by(Message.due_at)
    if registration_id is not None:
        query = query.where(Message.registration_id == registration_id)
    if status is not None:
        query = query.where(Message.status == status)
    return db.session.scalars(query).all()


def plan_through(event, offsets=DEFAULT, since=NOW):
    """The dispatch step's planning run at `since` and at each reminder's due time after it;
    every reminder row written."""
    for slot in [None, *reminder_slots(event.starts_at, offsets, after=since)]:
        plan_and_commit(slot.due_at if slot else since)
    return reminders()


def body(parsed):
    return parsed.get_body(("plain",)).get_content()


# --- pure planning -------------------------------------------------------------------------

def test_offsets_parse_in_days_hours_and_minutes_largest_first():
    assert [o.label for o in parse_offsets("1h, 7d,30m,1d")] == ["7d", "1d", "1h", "30m"]
    assert parse_offsets("90m")[0].before == timedelta(minutes=90)


@pytest.mark.parametrize("raw", ["7x", "7d,,1h", "d", "0h", "-1d", "1.5h", "7 days"])
def test_malformed_offsets_are_refused(raw):
    with pytest.raises(ValueError, match="like 7d,1d,1h"):
        parse_offsets(raw)


def test_malformed_reminder_offsets_stop_start_up_naming_the_setting(tmp_path):
    with pytest.raises(SystemExit) as exc:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
                    "REMINDER_OFFSETS": "7d,tomorrow"})
    assert "REMINDER_OFFSETS" in str(exc.value.code)


def test_each_reminder_may_wait_until_the_next_ones_due_time_the_last_until_the_start():
    start = datetime(2025, 9, 10, 12, tzinfo=UTC)
    slots = reminder_slots(start, DEFAULT, after=start - timedelta(days=30))
    assert [(s.offset.label, s.due_at, s.expires_at) for s in slots] == [
        ("7d", start - timedelta(days=7), start - timedelta(days=1)),
        ("1d", start - timedelta(days=1), start - timedelta(hours=1)),
        ("1h", start - timedelta(hours=1), start),
    ]


def test_registering_two_days_ahead_plans_only_the_day_and_hour_reminders():
    start = datetime(2025, 9, 10, 12, tzinfo=UTC)
    slots = reminder_slots(start, DEFAULT, after=start - timedelta(days=2))
    assert [s.offset.label for s in slots] == ["1d", "1h"]


def test_registering_thirty_minutes_ahead_plans_no_reminder():
    start = datetime(2025, 9, 10, 12, tzinfo=UTC)
    assert reminder_slots(start, DEFAULT, after=start - timedelta(minutes=30)) == []


@pytest.mark.parametrize(
    "local_start, zone, day_before_utc",
    [
        # Berlin springs forward on 29 March 2026: 12:00 CEST is 10:00Z; a day before, in
        # absolute time, is 10:00Z on the 28th, 11:00 CET on the wall clock.
        ("2026-03-29T12:00", "Europe/Berlin", "2026-03-28T10:00:00+00:00"),
        # New York falls back on 1 November 2026: 12:00 EST is 17:00Z; 24 h before is 13:00 EDT.
        ("2026-11-01T12:00", "America/New_York", "2026-10-31T17:00:00+00:00"),
        # Tokyo has no daylight saving time.
        ("2026-03-29T12:00", "Asia/Tokyo", "2026-03-28T03:00:00+00:00"),
    ],
)
def test_reminders_are_due_in_absolute_time_across_dst_changes(local_start, zone, day_before_utc):
    from zoneinfo import ZoneInfo

    start = datetime.fromisoformat(local_start).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    [week, day, hour] = reminder_slots(start, DEFAULT, after=start - timedelta(days=30))
    assert day.due_at.isoformat() == day_before_utc
    assert start - hour.due_at == timedelta(hours=1)
    assert start - week.due_at == timedelta(days=7)


# --- planning on sign-up, waiting list and cancellation -----------------------------------

def test_sign_up_a_month_ahead_plans_every_reminder(client):
    event = make_event(starts_at=NOW + timedelta(days=30))
    sign_up(client, event.slug)
    assert reminders() == []  # written when each falls due, not at sign-up
    planned = plan_through(event)
    assert [m.detail["offset"] for m in planned] == ["7d", "1d", "1h"]
    assert [m.due_at for m in planned] == [event.starts_at - o.before for o in DEFAULT]
    assert [m.detail["is_last"] for m in planned] == [False, False, True]


def test_late_registrant_gets_no_week_reminder(client):
    event = make_event(starts_at=NOW + timedelta(days=2))
    sign_up(client, event.slug)
    assert [m.detail["offset"] for m in plan_through(event)] == ["1d", "1h"]


def test_registrant_thirty_minutes_ahead_gets_only_the_confirmation(client):
    event = make_event(starts_at=NOW + timedelta(minutes=30))
    sign_up(client, event.slug)
    assert plan_through(event) == []
    kinds = db.session.scalars(sa.select(Message.kind)).all()
    assert kinds == ["confirmation"]


def test_waiting_list_gets_no_reminders_until_promoted_then_only_later_ones(app, client):
    event = make_event(capacity=1, starts_at=NOW + timedelta(days=10))
    sign_up(client, event.slug, email="first@example.org")
    sign_up(client, event.slug, email="second@example.org")
    second = services.find_active(event, "second@example.org")
    assert second.status == "waitlisted" and reminders(second.id) == []

    first = services.find_active(event, "first@example.org")
    promoted_at = event.starts_at - timedelta(days=3)
    services.cancel(first, promoted_at)
    db.session.commit()
    assert second.status == "confirmed"
    plan_through(event, since=promoted_at)
    assert [m.detail["offset"] for m in reminders(second.id)] == ["1d", "1h"]
    assert all(m.due_at > promoted_at for m in reminders(second.id))


def test_cancelled_registrations_pending_reminders_end_skipped_with_the_reason(client):
    event = make_event()
    sign_up(client, event.slug)
    week = reminder_slots(event.starts_at, DEFAULT, after=NOW)[0]
    plan_and_commit(week.due_at)
    registration = services.find_active(event, "aiko.tanaka@example.org")
    services.cancel(registration, week.due_at + timedelta(minutes=1))
    db.session.commit()
    assert {(m.status, m.skip_reason) for m in reminders()} == {("skipped", "cancelled")}


def test_custom_offsets_come_from_the_setting(app_with):
    with app_with(REMINDER_OFFSETS="2d,15m") as app:
        event = make_event()
        sign_up(app.test_client(), event.slug)
        offsets = parse_offsets("2d,15m")
        assert [m.detail["offset"] for m in plan_through(event, offsets)] == ["2d", "15m"]


# --- sending: windows, outages and what the reminders say ---------------------------------

def test_after_an_outage_only_the_freshest_reminder_goes_out(app, client):
    event = make_event(starts_at=NOW + timedelta(days=30))
    sign_up(client, event.slug)
    # The dispatcher was down from before the week reminder until after the day reminder.
    summary = dispatch_at(event.starts_at - timedelta(hours=20))
    assert summary.sent == 1 + 1  # the confirmation (still in its window) and the day reminder
    # The week's reminder, whose window closed during the outage, is never written.
    by_offset = {m.detail["offset"]: (m.status, m.skip_reason) for m in reminders()}
    assert by_offset == {"1d": ("sent", None)}


def test_no_reminder_goes_out_once_the_session_has_started(app, client):
    event = make_event(starts_at=NOW + timedelta(days=30))
    sign_up(client, event.slug)
    dispatch_at(event.starts_at + timedelta(minutes=1))
    assert reminders() == []
    assert not any("Reminder" in str(mail["Subject"]) for mail in outbox(app))


def test_a_reminder_written_but_unsent_at_the_start_never_goes_out(app, client):
    event = make_event(starts_at=NOW + timedelta(days=30))
    sign_up(client, event.slug)
    plan_and_commit(event.starts_at - timedelta(minutes=30))  # the dispatcher then stopped
    dispatch_at(event.starts_at + timedelta(minutes=1))
    assert [(m.detail["offset"], m.status, m.skip_reason) for m in reminders()] == [
        ("1h", "skipped", "expired")]
    assert not any("Reminder" in str(mail["Subject"]) for mail in outbox(app))


def test_reminders_go_out_each_in_its_window_exactly_once(app, client):
    event = make_event(starts_at=NOW + timedelta(days=30))
    sign_up(client, event.slug)
    for slot in reminder_slots(event.starts_at, DEFAULT, after=NOW):
        dispatch_at(slot.due_at)
        dispatch_at(slot.due_at + timedelta(minutes=5))
    subjects = [str(mail["Subject"]) for mail in outbox(app)]
    assert subjects == [
        "Confirmed: Climate finance 101",
        "Reminder: Climate finance 101, in 7 days",
        "Reminder: Climate finance 101, in 1 day",
        "Reminder: Climate finance 101, in 1 hour",
    ]


def test_last_reminder_puts_the_join_link_first(app, client):
    event = make_event(starts_at=NOW + timedelta(days=30))
    sign_up(client, event.slug)
    dispatch_at(event.starts_at - timedelta(hours=1))
    last = outbox(app)[-1]
    text = body(last)
    assert "starts in 1 hour" in text
    assert text.index(event.join_url) < text.index("When:")
    html = last.get_body(("html",)).get_content()
    assert html.index(event.join_url) < html.index("starts in 1 hour")


def test_japanese_reminder_names_the_time_in_the_attendees_zone(app, client):
    event = make_event(starts_at=datetime(2025, 7, 22, 12, tzinfo=UTC))
    sign_up(client, event.slug, language="ja", timezone="Asia/Tokyo")
    dispatch_at(event.starts_at - timedelta(days=1))
    reminder = outbox(app)[-1]
    assert str(reminder["Subject"]) == "リマインダー: Climate finance 101（1日後）"
    assert "2025年7月22日(火) 21:00〜22:30 日本標準時" in body(reminder)


def test_waiting_list_emails_never_carry_the_join_link(app, client):
    event = make_event(capacity=0)
    sign_up(client, event.slug)
    dispatch_at(event.starts_at - timedelta(minutes=30))
    mails = outbox(app)
    assert len(mails) == 1
    assert event.join_url not in mails[0].as_string()


def test_a_reminder_sent_late_in_its_window_says_how_long_is_really_left(app, client):
    event = make_event(starts_at=NOW + timedelta(days=30))
    sign_up(client, event.slug)
    dispatch_at(event.starts_at - timedelta(hours=5))  # the day reminder, 19 hours late
    assert str(outbox(app)[-1]["Subject"]) == "Reminder: Climate finance 101, in 5 hours"


@pytest.mark.parametrize("left, en, ja", [
    (timedelta(days=7), "in 7 days", "7日後"),
    (timedelta(hours=23), "in 1 day", "1日後"),
    (timedelta(hours=3), "in 3 hours", "3時間後"),
    (timedelta(minutes=58), "in 1 hour", "1時間後"),
    (timedelta(minutes=20), "in 20 minutes", "20分後"),
])
def test_time_left_in_words(app, left, en, ja):
    from flask_babel import force_locale

    from notifications.mail import time_left_words

    with force_locale("en"):
        english = time_left_words(left)
    with force_locale("ja"):
        japanese = time_left_words(left)
    assert (english, japanese) == (en, ja)
