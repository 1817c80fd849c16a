"""The dispatcher against a mail server that refuses, stalls, goes away and comes back: what is
retried and when, what fails at once, what the row shows afterwards, and marks written in groups.
Time travels through `now`; nothing sleeps."""

import logging
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
import sqlalchemy as sa

from extensions import db
from notifications import planner
from notifications.claims import LAST_TRY_BEFORE_EXPIRY, retry_at, skip_expired
from notifications.dispatcher import dispatch
from notifications.models import Message
from notifications.outcomes import ATTEMPT_LOG_LIMIT
from tests.conftest import (
    NOW,
    database_time,
    dispatch_at,
    make_event,
    make_registration,
    row,
    signed_up,
)
from tests.smtp_servers import SMTPServer

ADDRESS = "aiko.tanaka@example.org"


@pytest.fixture
def server(app):
    """A real SMTP server on a reserved port, not yet listening; the app sends through it."""
    server = SMTPServer()
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=server.port,
                      SMTP_TIMEOUT_SECONDS=5)
    yield server
    server.stop()


@pytest.fixture
def smtp(server):
    """The server, up."""
    return server.start().handler


def attempt_times(message: Message) -> list[datetime]:
    return [datetime.fromisoformat(entry["at"]) for entry in message.attempt_log]


def next_due() -> datetime | None:
    """When the earliest pending message is due."""
    return db.session.scalar(sa.select(sa.func.min(Message.due_at))
                             .where(Message.status == "pending"))


# --- Transient failures ------------------------------------------------------------------------


def test_three_451s_then_250_deliver_the_message_exactly_once(app, smtp):
    message = signed_up()
    smtp.refuse_next(ADDRESS, *["451 4.7.1 Greylisted, try again later"] * 3)

    now = NOW
    for attempt in (1, 2, 3):
        assert dispatch(now).retrying == 1
        retried = row(message.id)
        assert (retried.status, retried.attempts) == ("pending", attempt)
        assert dispatch(retried.due_at - timedelta(seconds=1)).claimed == 0  # not due before
        now = retried.due_at
    assert dispatch(now).sent == 1

    sent = row(message.id)
    assert smtp.message_ids() == {message.message_id: 1}
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 4, now)
    assert [e["outcome"] for e in sent.attempt_log] == ["transient"] * 3 + ["sent"]
    assert sent.attempt_log[0]["reply"] == "451 4.7.1 Greylisted, try again later"
    assert sent.last_reply == sent.attempt_log[-1]["reply"] == "250 2.0.0 Ok: queued as 4F2A9"
    times = attempt_times(sent)
    assert times[0] == NOW and times[1] - times[0] <= timedelta(minutes=5)
    assert all(later > earlier for earlier, later in pairwise(times))


def test_a_server_that_stops_answering_times_out_and_the_message_goes_on_the_next_try(
    app, smtp
):
    app.config["SMTP_TIMEOUT_SECONDS"] = 1
    message = signed_up()
    stall = smtp.stall_at_mail()
    assert dispatch(NOW).retrying == 1
    assert stall.reached.is_set()
    timed_out = row(message.id)
    assert timed_out.status == "pending"
    assert "timed out" in timed_out.last_reply
    assert timed_out.attempt_log[-1]["outcome"] == "transient"

    stall.release()
    assert dispatch(timed_out.due_at).sent == 1
    assert smtp.message_ids() == {message.message_id: 1}


def test_an_hour_long_outage_delivers_what_is_still_in_its_window_once_and_skips_the_rest(
    app, server
):
    # A session 90 minutes from now, booked long ago: its week reminder's window has closed,
    # the day reminder's closes in 30 minutes (mid-outage), the hour reminder's opens then.
    event = make_event(starts_at=NOW + timedelta(minutes=90))
    booked_at = event.starts_at - timedelta(days=10)
    registration = make_registration(event, registered_at=booked_at, confirmed_at=booked_at)
    late = make_registration(event, email="late@example.org")
    confirmation = planner.queue_signup(late, NOW)
    db.session.commit()
    back_up_at = NOW + timedelta(hours=1)

    now = NOW
    for _ in range(100):  # each round jumps to the next retry; a few dozen are plenty
        if (due := next_due()) is None:
            break
        now = max(now, due)
        assert now < event.ends_at, "time ran past the session"
        if now >= back_up_at and not server.is_up:
            server.start()
        dispatch_at(now)  # each pass writes the reminder whose window holds `now`
    else:
        pytest.fail("messages still pending after 100 rounds")
    reminders = {m.detail["offset"]: m for m in db.session.scalars(
        sa.select(Message).where(Message.registration_id == registration.id))}
    # The week's window had closed before the outage began: it is never written.
    assert reminders.keys() == {"1d", "1h"}
    day, hour = reminders["1d"], reminders["1h"]
    # The late registrant booked after the day reminder was due: theirs is the hour's alone.
    [late_hour] = db.session.scalars(sa.select(Message).where(
        Message.registration_id == late.id, Message.kind == "reminder"))
    assert (day.expires_at, hour.expires_at) == (NOW + timedelta(minutes=30), event.starts_at)

    delivered = server.handler.message_ids()
    assert delivered == {confirmation.message_id: 1, hour.message_id: 1,
                         late_hour.message_id: 1}
    day_row = row(day.id)
    assert (day_row.status, day_row.skip_reason) == ("skipped", "expired")
    assert day_row.attempts >= 3
    assert {e["outcome"] for e in day_row.attempt_log} == {"transient"}
    assert all("ConnectionRefusedError" in e["reply"] for e in day_row.attempt_log)
    # Tried into its last minute, never after its window.
    last_try = attempt_times(day_row)[-1]
    assert day.expires_at - LAST_TRY_BEFORE_EXPIRY <= last_try < day.expires_at

    for message in (hour, confirmation):
        sent = row(message.id)
        assert sent.status == "sent" and sent.sent_at >= back_up_at
        times = attempt_times(sent)
        assert times[1] - times[0] <= timedelta(minutes=5)
        gaps = [later - earlier for earlier, later in pairwise(times)]
        assert all(timedelta(0) < gap <= timedelta(hours=1) for gap in gaps)


def test_a_retry_is_brought_forward_to_just_before_the_window_closes():
    expires_at = NOW + timedelta(minutes=10)
    assert retry_at(NOW, 1, expires_at) <= NOW + timedelta(seconds=60)
    assert retry_at(NOW, 8, expires_at) == expires_at - LAST_TRY_BEFORE_EXPIRY
    assert retry_at(expires_at - timedelta(seconds=30), 8, expires_at) is None


def test_the_attempt_log_keeps_only_the_latest_attempts(app, smtp):
    message = signed_up()
    message.attempt_log = [{"at": NOW.isoformat(), "outcome": "transient", "reply": f"451 #{n}"}
                           for n in range(ATTEMPT_LOG_LIMIT)]
    message.attempts = ATTEMPT_LOG_LIMIT
    db.session.commit()
    smtp.refuse_next(ADDRESS, "452 4.2.2 Mailbox full")
    dispatch(NOW)
    log = row(message.id).attempt_log
    assert len(log) == ATTEMPT_LOG_LIMIT
    assert log[0]["reply"] == "451 #1"
    assert log[-1] == {"at": NOW.isoformat(), "outcome": "transient",
                       "reply": "452 4.2.2 Mailbox full"}


# --- Permanent failures ------------------------------------------------------------------------


def test_a_550_at_rcpt_fails_the_message_at_once_and_the_row_shows_why(app, smtp):
    message = signed_up()
    reply = "550 5.1.1 <aiko.tanaka@example.org>: Recipient address rejected: User unknown"
    smtp.rcpt_replies[ADDRESS] = reply
    summary = dispatch(NOW)

    assert (summary.failed, summary.retrying, summary.sent) == (1, 0, 0)
    failed = row(message.id)
    assert (failed.status, failed.attempts, failed.last_reply) == ("failed", 1, reply)
    assert failed.attempt_log == [{"at": NOW.isoformat(), "outcome": "permanent",
                                   "reply": reply}]
    assert failed.claim_token is None
    assert dispatch(NOW + timedelta(days=1)).claimed == 0  # never tried again
    assert smtp.delivered == []


def test_a_refused_sender_leaves_the_rows_as_they_were_and_says_so_loudly(app, smtp, caplog):
    message = signed_up()
    smtp.mail_reply = "553 5.7.1 <forum@example.org>: Sender address rejected"
    with caplog.at_level(logging.ERROR, logger="notifications.dispatcher"):
        summary = dispatch(NOW)
    assert summary.stopped and summary.released == 1
    untouched = row(message.id)
    assert (untouched.status, untouched.attempts, untouched.attempt_log) == ("pending", 0, None)
    assert any(r.levelno == logging.ERROR and "DISPATCH STOPPED" in r.getMessage()
               for r in caplog.records)


# --- Marks written in groups -------------------------------------------------------------------


def sent_count_seen_from_outside(app) -> int:
    """Rows marked sent, as another connection sees them (only what has been committed)."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return connection.scalar(
                sa.select(sa.func.count()).select_from(Message).where(Message.status == "sent"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("mark_batch, committed_at_each_send", [
    (1, [0, 1, 2, 3, 4, 5, 6]),
    (3, [0, 0, 0, 3, 3, 3, 6]),
])
def test_sent_marks_are_committed_in_groups_of_dispatch_mark_batch(
    app, smtp, mark_batch, committed_at_each_send
):
    app.config["DISPATCH_MARK_BATCH"] = mark_batch
    event = make_event()
    messages = [signed_up(event, email=f"p{n}@example.org") for n in range(7)]
    seen = []
    smtp.during_data = lambda: seen.append(sent_count_seen_from_outside(app))
    assert dispatch(NOW).sent == 7
    assert seen == committed_at_each_send
    for message in messages:
        sent = row(message.id)
        assert (sent.status, sent.attempts, sent.claim_token) == ("sent", 1, None)
        assert sent.last_reply == "250 2.0.0 Ok: queued as 4F2A9"
        assert [e["outcome"] for e in sent.attempt_log] == ["sent"]


def test_a_failure_writes_the_waiting_sent_marks_first(app, smtp):
    app.config["DISPATCH_MARK_BATCH"] = 10
    event = make_event()
    first = signed_up(event, email="first@example.org")
    refused = signed_up(event, email="refused@example.org")
    smtp.rcpt_replies["refused@example.org"] = "550 5.1.1 No such user"
    third = signed_up(event, email="third@example.org")
    seen = []
    smtp.during_data = lambda: seen.append(sent_count_seen_from_outside(app))
    summary = dispatch(NOW)
    assert (summary.sent, summary.failed) == (2, 1)
    assert seen == [0, 1]  # the refusal made the first mark go to the database
    assert [row(m.id).status for m in (first, refused, third)] == ["sent", "failed", "sent"]


def test_grouped_marks_are_written_only_where_this_dispatcher_still_holds_the_claim(
    app, smtp, caplog
):
    app.config["DISPATCH_MARK_BATCH"] = 5
    event = make_event()
    kept, lost = (signed_up(event, email=f"{name}@example.org") for name in ("kept", "lost"))
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def take_over_lost():  # another dispatcher took the row over (our lease ran out)
        if len(smtp.delivered) == 1:
            with engine.begin() as connection:
                connection.execute(sa.update(Message).where(Message.id == lost.id)
                                   .values(claim_token="other-dispatcher"))

    smtp.during_data = take_over_lost
    with caplog.at_level(logging.WARNING, logger="notifications.dispatcher"):
        assert dispatch(NOW).sent == 2
    engine.dispose()
    assert row(kept.id).status == "sent"
    taken = row(lost.id)
    assert (taken.status, taken.claim_token, taken.attempts) == ("pending", "other-dispatcher", 0)
    assert any(f"message {lost.id}: sent, but its claim was lost" in r.getMessage()
               for r in caplog.records)


def test_an_interrupted_dispatch_records_what_went_and_gives_back_what_had_not_started(
    app, smtp, monkeypatch
):
    from notifications import transports

    app.config["DISPATCH_MARK_BATCH"] = 5
    event = make_event()
    messages = [signed_up(event, email=f"p{n}@example.org") for n in range(5)]
    real_send = transports.SMTPTransport.send

    def send(transport, mail):
        if len(smtp.delivered) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C while the third message is on the wire
        return real_send(transport, mail)

    monkeypatch.setattr(transports.SMTPTransport, "send", send)
    with pytest.raises(KeyboardInterrupt):
        dispatch(NOW)
    first, second, in_flight, *not_started = (row(m.id) for m in messages)
    assert (first.status, second.status) == ("sent", "sent")
    # It may have reached the server: it stays claimed until its lease ends.
    assert in_flight.status == "pending" and in_flight.lease_until > database_time()
    assert [(m.status, m.claim_token) for m in not_started] == [("pending", None)] * 2


@pytest.mark.parametrize("mark_batch", [1, 3])
def test_once_the_last_message_to_a_deleted_person_is_done_the_row_forgets_their_address(
    app, smtp, mark_batch
):
    app.config["DISPATCH_MARK_BATCH"] = mark_batch
    event = make_event()
    kept = signed_up(event, email="kept@example.org")
    registration = make_registration(event, email="gone@example.org")
    registration.status, registration.anonymised_at = "cancelled", NOW
    goodbye = planner.queue_cancellation(registration, True, NOW)
    bounced = make_registration(event, email="bounced@example.org")
    bounced.status, bounced.anonymised_at = "cancelled", NOW
    refused = planner.queue_cancellation(bounced, True, NOW)
    db.session.commit()
    smtp.rcpt_replies["bounced@example.org"] = "550 5.1.1 No such user"

    assert dispatch(NOW).sent == 2
    assert {m["To"].addresses[0].addr_spec for m in smtp.messages()} == {
        "kept@example.org", "gone@example.org"}
    for done, status in ((goodbye, "sent"), (refused, "failed")):
        forgotten = row(done.id)
        assert forgotten.status == status
        assert (forgotten.recipient, forgotten.last_reply, forgotten.attempt_log) == ("", None,
                                                                                      None)
    assert row(kept.id).recipient == "kept@example.org"
    assert row(kept.id).attempt_log[0]["outcome"] == "sent"


# --- What the log says -------------------------------------------------------------------------


def test_each_batch_that_claimed_messages_logs_one_line_with_its_counts(app, smtp, caplog):
    event = make_event()
    for n in range(3):
        signed_up(event, email=f"p{n}@example.org")
    smtp.rcpt_replies["p1@example.org"] = "550 5.1.1 No such user"
    with caplog.at_level(logging.INFO, logger="notifications.dispatcher"):
        dispatch(NOW)
        dispatch(NOW)  # nothing left: an idle tick says nothing
    lines = [r.getMessage() for r in caplog.records
             if r.name == "notifications.dispatcher" and r.getMessage().startswith("dispatcher ")]
    assert len(lines) == 1
    assert lines[0].endswith("3 claimed, 2 sent, 1 failed, 0 skipped, 0 retrying, 0 given back")


# --- Housekeeping ------------------------------------------------------------------------------


def test_housekeeping_skips_unclaimed_pending_messages_whose_window_has_closed(app):
    event = make_event()
    closed = signed_up(event, email="closed@example.org")
    held = signed_up(event, email="held@example.org")
    open_ = signed_up(event, email="open@example.org")
    later = event.ends_at + timedelta(minutes=1)
    open_.expires_at = later + timedelta(days=1)
    held.claim_token, held.lease_until = "busy-dispatcher", database_time(300)
    sent = signed_up(event, email="sent@example.org")
    sent.status = "sent"
    db.session.commit()

    assert skip_expired(later) == 1
    assert (row(closed.id).status, row(closed.id).skip_reason) == ("skipped", "expired")
    assert row(held.id).status == "pending"  # its dispatcher checks the window itself
    assert row(open_.id).status == "pending"
    assert row(sent.id).status == "sent"
