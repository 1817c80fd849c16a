"""The dispatcher against a real SMTP server (aiosmtpd): what is sent, retried, failed, skipped,
never twice; the `flask dispatch` command and the embedded scheduler."""

import email
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

import click
import psycopg
import pytest
import sqlalchemy as sa
import vobject
from aiosmtpd.smtp import AuthResult, LoginPassword

from extensions import db
from notifications import planner, scheduler, worker
from notifications.claims import claim, retry_delay, skip_expired
from notifications.dispatcher import dispatch, dispatch_due
from notifications.models import Message
from notifications.transports import filename
from tests.conftest import NOW, database_time, end_leases, make_event, row, signed_up
from tests.smtp_servers import SMTPServer, free_port

JOIN = "https://meet.example.org/j/123456"

# The login test server speaks AUTH over plain TCP on loopback, which aiosmtpd warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def smtp_with_login(app):
    """A real SMTP server that wants AUTH (user "forum", password "s3cret") before MAIL."""
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login, auth_data.password) == (b"forum", b"s3cret")
        logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    with SMTPServer(authenticator=authenticator, auth_required=True,
                    auth_require_tls=False) as server:
        app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=server.port,
                          SMTP_USERNAME="forum", SMTP_PASSWORD="s3cret")
        server.handler.logins = logins
        yield server.handler


def calendar_part(parsed):
    return next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")


# --- What is delivered -------------------------------------------------------------------------


def test_confirmation_is_delivered_with_an_invite_calendar_clients_accept(app, smtp):
    message = signed_up()
    registration = message.registration
    summary = dispatch(NOW)

    assert (summary.sent, summary.failed, summary.skipped, summary.retrying) == (1, 0, 0, 0)
    mail_from, rcpt_tos, raw = smtp.delivered[0]
    assert mail_from == "forum@example.org"
    assert rcpt_tos == ["aiko.tanaka@example.org"]
    parsed = smtp.messages()[0]
    assert parsed["Message-ID"] == message.message_id

    # The structure Outlook, Gmail and Apple Mail need, in this order.
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.get_payload()
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain", "text/html", "text/calendar"
    ]
    calendar = alternative.get_payload()[2]
    assert calendar["Content-Disposition"] is None
    assert calendar.get_param("method") == "REQUEST"
    ics = calendar.get_payload(decode=True)
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_payload(decode=True) == ics

    lines = ics.decode().replace("\r\n ", "").split("\r\n")
    assert not any(line.startswith("UID") for line in lines[: lines.index("BEGIN:VEVENT")])
    assert any(line.startswith("DTSTART:") and line.endswith("Z") for line in lines)
    assert any(line.startswith("DTEND:") and line.endswith("Z") for line in lines)

    parsed_ics = vobject.readOne(ics.decode())
    assert parsed_ics.method.value == calendar.get_param("method")
    assert "uid" not in parsed_ics.contents
    vevent = parsed_ics.vevent
    assert vevent.uid.value == registration.ical_uid
    assert vevent.sequence.value == "0"
    assert vevent.dtstart.value == registration.event.starts_at
    assert vevent.organizer.value == "mailto:organisers@example.org"
    attendee = vevent.attendee
    assert attendee.value == "mailto:aiko.tanaka@example.org"
    assert attendee.params["CN"] == ["Aiko Tanaka"]
    assert attendee.params["RSVP"] == ["FALSE"]  # no calendar reply is read yet
    assert attendee.params["PARTSTAT"] == ["NEEDS-ACTION"]
    assert attendee.params["ROLE"] == ["REQ-PARTICIPANT"]
    assert vevent.url.value == JOIN


def test_sent_row_records_time_attempt_and_the_servers_reply(app, smtp):
    message = signed_up()
    dispatch(NOW)
    sent = row(message.id)
    assert sent.status == "sent"
    assert sent.sent_at == NOW
    assert sent.last_attempt_at == NOW
    assert sent.attempts == 1
    assert sent.last_reply == "250 2.0.0 Ok: queued as 4F2A9"
    assert sent.claim_token is None and sent.lease_until is None


def test_invite_on_the_dst_change_day_lands_on_the_right_utc_instant(app, smtp):
    # Berlin moves to UTC+2 at 02:00 on 29 March 2026, so noon there is 10:00 UTC.
    starts_at = datetime(2026, 3, 29, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    signed_up(make_event(starts_at=starts_at), timezone="Europe/Berlin")
    dispatch(NOW)
    parsed = smtp.messages()[0]
    ics = calendar_part(parsed).get_payload(decode=True).decode()
    assert "DTSTART:20260329T100000Z" in ics.split("\r\n")
    assert "DTEND:20260329T113000Z" in ics.split("\r\n")
    assert vobject.readOne(ics).vevent.dtstart.value == datetime(2026, 3, 29, 10, tzinfo=UTC)
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Sunday 29 March 2026, 12:00–13:30 Central European Summer Time" in text


def test_cancellation_sends_cancel_for_the_same_uid_with_a_higher_sequence(app, smtp):
    confirmation = signed_up()
    registration = confirmation.registration
    dispatch(NOW)
    registration.status = "cancelled"
    planner.queue_cancellation(registration, True, NOW)
    db.session.commit()
    dispatch(NOW)

    request, cancel = (vobject.readOne(calendar_part(m).get_payload(decode=True).decode())
                       for m in smtp.messages())
    assert calendar_part(smtp.messages()[1]).get_param("method") == "CANCEL"
    assert cancel.method.value == "CANCEL"
    assert cancel.vevent.uid.value == request.vevent.uid.value
    assert int(cancel.vevent.sequence.value) > int(request.vevent.sequence.value)
    assert cancel.vevent.status.value == "CANCELLED"
    assert JOIN.encode() not in smtp.delivered[1][2]


def test_waitlisted_email_is_delivered_without_invite_or_join_link(app, smtp):
    signed_up(status="waitlisted", confirmed_at=None)
    dispatch(NOW)
    parsed = smtp.messages()[0]
    assert parsed.get_content_type() == "multipart/alternative"
    assert not any(p.get_content_type() == "text/calendar" for p in parsed.walk())
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_content()
    assert "WAITING LIST" in text and "meet.example.org" not in text


def test_one_connection_carries_a_whole_batch(app, smtp):
    event = make_event()
    for n in range(5):
        signed_up(event, email=f"person{n}@example.org")
    summary = dispatch(NOW)
    assert summary.sent == 5
    assert len(smtp.delivered) == 5
    assert len(smtp.sessions) == 1


def test_no_database_transaction_is_open_while_smtp_talks(app, smtp):
    signed_up()
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    seen = []

    def probe():
        if url.get_backend_name() == "sqlite":
            # Any open transaction of ours holds SQLite's write lock (BEGIN IMMEDIATE).
            conn = sqlite3.connect(url.database, timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                seen.append("free")
            except sqlite3.OperationalError as exc:
                seen.append(str(exc))
            finally:
                conn.close()
        else:
            dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(dsn) as conn:
                busy = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                ).fetchone()[0]
            seen.append("free" if busy == 0 else f"{busy} open transactions")

    smtp.during_data = probe
    assert dispatch(NOW).sent == 1
    assert seen == ["free"]


# --- Failures ----------------------------------------------------------------------------------


def test_a_451_keeps_the_message_pending_for_a_retry_within_five_minutes(app, smtp):
    message = signed_up()
    smtp.rcpt_replies["aiko.tanaka@example.org"] = "451 4.7.1 Try again later"
    summary = dispatch(NOW)

    assert (summary.sent, summary.retrying) == (0, 1)
    retried = row(message.id)
    assert retried.status == "pending"
    assert retried.attempts == 1
    assert retried.last_reply == "451 4.7.1 Try again later"
    assert NOW < retried.due_at <= NOW + timedelta(minutes=5)
    assert retried.claim_token is None and retried.lease_until is None

    # Not due again until then; once due, it goes.
    assert dispatch(NOW + timedelta(seconds=1)).claimed == 0
    del smtp.rcpt_replies["aiko.tanaka@example.org"]
    assert dispatch(retried.due_at).sent == 1
    assert row(message.id).attempts == 2


def test_back_off_grows_with_jitter_and_never_exceeds_an_hour():
    delays = [retry_delay(n) for n in range(1, 30)]
    assert delays[0] <= timedelta(minutes=5)
    assert all(timedelta(0) < d <= timedelta(hours=1) for d in delays)
    assert retry_delay(6) > retry_delay(1)
    assert len({retry_delay(3) for _ in range(20)}) > 1


def test_a_retry_that_would_land_after_the_window_is_skipped_as_expired(app, smtp):
    event = make_event()
    message = signed_up(event)
    smtp.rcpt_replies["aiko.tanaka@example.org"] = "452 4.2.2 Mailbox full"
    late = event.ends_at - timedelta(seconds=10)
    summary = dispatch(late)
    assert summary.skipped == 1
    expired = row(message.id)
    assert (expired.status, expired.skip_reason) == ("skipped", "expired")
    assert expired.last_reply == "452 4.2.2 Mailbox full"


def test_a_550_for_the_recipient_fails_the_message_and_the_batch_goes_on(app, smtp):
    event = make_event()
    bad = signed_up(event, email="nobody@example.org")
    good = signed_up(event)
    smtp.rcpt_replies["nobody@example.org"] = "550 5.1.1 No such user"
    summary = dispatch(NOW)
    assert (summary.sent, summary.failed) == (1, 1)
    failed = row(bad.id)
    assert failed.status == "failed"
    assert failed.last_reply == "550 5.1.1 No such user"
    assert row(good.id).status == "sent"


def test_a_refused_sender_stops_the_batch_and_leaves_everything_pending(app, smtp, caplog):
    event = make_event()
    messages = [signed_up(event, email=f"p{n}@example.org") for n in range(3)]
    smtp.mail_reply = "553 5.7.1 Sender address rejected"
    summary = dispatch(NOW)

    assert summary.stopped and "553 5.7.1 Sender address rejected" in summary.stopped
    assert (summary.sent, summary.failed, summary.released) == (0, 0, 3)
    for message in messages:
        pending = row(message.id)
        assert (pending.status, pending.attempts, pending.claim_token) == ("pending", 0, None)
        assert pending.due_at == NOW
    assert "DISPATCH STOPPED" in caplog.text
    # Once the relay is fixed the same rows go out at once.
    smtp.mail_reply = None
    assert dispatch(NOW).sent == 3


def test_smtp_login_is_used_when_a_username_is_set(app, smtp_with_login):
    signed_up()
    assert dispatch(NOW).sent == 1
    assert [ok for _, ok in smtp_with_login.logins] == [True]
    assert len(smtp_with_login.delivered) == 1


def test_a_wrong_smtp_password_stops_the_batch_and_leaves_everything_pending(
    app, smtp_with_login
):
    event = make_event()
    messages = [signed_up(event, email=f"p{n}@example.org") for n in range(2)]
    app.config["SMTP_PASSWORD"] = "wrong"
    summary = dispatch(NOW)
    assert summary.stopped and "535" in summary.stopped
    assert summary.released == 2
    assert [row(m.id).status for m in messages] == ["pending", "pending"]
    assert all(row(m.id).attempts == 0 for m in messages)


def test_a_stop_request_gives_back_the_remaining_claims(app, smtp):
    event = make_event()
    messages = [signed_up(event, email=f"p{n}@example.org") for n in range(3)]
    summary = dispatch(NOW, should_stop=lambda: len(smtp.delivered) >= 1)
    assert (summary.sent, summary.released) == (1, 2)
    assert [row(m.id).claim_token for m in messages] == [None, None, None]
    assert dispatch(NOW).sent == 2


def test_an_unreachable_server_is_a_transient_failure(app):
    message = signed_up()
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(),
                      SMTP_TIMEOUT_SECONDS=2)
    summary = dispatch(NOW)
    assert summary.retrying == 1
    retried = row(message.id)
    assert retried.status == "pending" and retried.attempts == 1
    assert "ConnectionRefusedError" in retried.last_reply


def test_after_a_421_the_next_message_goes_over_a_new_connection(app, smtp):
    event = make_event()
    first = signed_up(event, email="first@example.org")
    second = signed_up(event, email="second@example.org")
    smtp.rcpt_replies["first@example.org"] = "421 4.3.2 Shutting down"
    summary = dispatch(NOW)
    assert (summary.retrying, summary.sent) == (1, 1)
    assert row(first.id).status == "pending"
    assert row(second.id).status == "sent"
    assert len(smtp.sessions) == 2


# --- Re-checks before sending -------------------------------------------------------------------


def test_a_message_past_its_window_is_skipped_as_expired(app, smtp):
    event = make_event()
    message = signed_up(event)
    summary = dispatch(event.ends_at)
    assert summary.skipped == 1 and smtp.delivered == []
    assert (row(message.id).status, row(message.id).skip_reason) == ("skipped", "expired")


def test_confirmation_of_a_registration_cancelled_meanwhile_is_skipped_but_the_cancel_goes(
    app, smtp
):
    confirmation = signed_up()
    registration = confirmation.registration
    registration.status = "cancelled"
    cancellation = planner.queue_cancellation(registration, True, NOW)
    db.session.commit()
    # Skipped at once, so the organisers see it will not go; the dispatcher sends the cancel.
    assert (row(confirmation.id).status, row(confirmation.id).skip_reason) == (
        "skipped", "cancelled")
    summary = dispatch(NOW)

    assert (summary.sent, summary.skipped) == (1, 0)
    assert row(cancellation.id).status == "sent"
    assert calendar_part(smtp.messages()[0]).get_param("method") == "CANCEL"


def test_a_message_for_a_registration_cancelled_after_planning_is_skipped_by_the_dispatcher(
    app, smtp
):
    confirmation = signed_up()
    confirmation.registration.status = "cancelled"  # e.g. while another dispatcher held it
    db.session.commit()
    summary = dispatch(NOW)
    assert (summary.sent, summary.skipped) == (0, 1)
    assert row(confirmation.id).skip_reason == "cancelled"


def test_an_invite_with_an_older_sequence_is_superseded(app, smtp):
    message = signed_up()
    message.registration.ical_sequence = 1  # a reschedule has queued a newer invite
    db.session.commit()
    dispatch(NOW)
    assert (row(message.id).status, row(message.id).skip_reason) == ("skipped", "superseded")
    assert smtp.delivered == []


def test_waiting_list_notice_for_someone_promoted_meanwhile_is_superseded(app, smtp):
    notice = signed_up(status="waitlisted", confirmed_at=None)
    registration = notice.registration
    registration.status = "confirmed"
    promotion = planner.queue_promotion(registration, NOW)
    db.session.commit()
    dispatch(NOW)
    assert row(notice.id).skip_reason == "superseded"
    assert row(promotion.id).status == "sent"
    assert smtp.messages()[0]["Subject"].startswith("A seat is yours")


def test_nothing_but_the_cancellation_goes_for_a_cancelled_event(app, smtp):
    event = make_event()
    confirmation = signed_up(event)
    registration = confirmation.registration
    event.status = "cancelled"
    registration.status = "cancelled"
    cancellation = planner.queue_cancellation(registration, True, NOW)
    db.session.commit()
    dispatch(NOW)
    assert row(confirmation.id).status == "skipped"
    assert row(cancellation.id).status == "sent"
    assert len(smtp.delivered) == 1


def test_a_message_not_yet_due_is_left_alone(app, smtp):
    message = signed_up()
    message.due_at = NOW + timedelta(hours=1)
    db.session.commit()
    assert dispatch(NOW).claimed == 0
    assert row(message.id).claim_token is None
    assert smtp.delivered == []


def test_an_unsendable_address_fails_at_once_without_reaching_the_server(app, smtp):
    message = signed_up()
    message.recipient = "a@example.org, b@example.org"
    db.session.commit()
    assert dispatch(NOW).failed == 1
    assert row(message.id).status == "failed"
    assert row(message.id).last_reply.startswith("not sent:")
    assert smtp.delivered == []


def test_a_message_that_cannot_be_built_is_retried_later_and_does_not_block_the_rest(
    app, smtp, monkeypatch
):
    from notifications import dispatcher

    event = make_event()
    broken = signed_up(event, email="broken@example.org")
    fine = signed_up(event)
    real_build = dispatcher.build_message

    def build(message, config, now):
        if message.recipient == "broken@example.org":
            raise RuntimeError("template bug")
        return real_build(message, config, now)

    monkeypatch.setattr(dispatcher, "build_message", build)
    summary = dispatch(NOW)
    assert (summary.sent, summary.retrying) == (1, 1)
    assert row(broken.id).status == "pending"
    assert row(broken.id).last_reply == "not built: RuntimeError: template bug"
    assert row(fine.id).status == "sent"


# --- Claims: nothing sent twice -----------------------------------------------------------------


def test_a_claimed_message_is_not_taken_by_another_dispatcher_until_the_lease_ends(app):
    message = signed_up()
    lease = timedelta(seconds=app.config["CLAIM_LEASE_SECONDS"])
    before = database_time()
    assert claim(NOW, "a" * 32, 10, lease) == [message.id]
    # The lease runs on the database's clock, from the moment of the claim.
    assert before + lease <= row(message.id).lease_until <= database_time() + lease
    assert claim(NOW, "b" * 32, 10, lease) == []
    end_leases()
    assert claim(NOW, "c" * 32, 10, lease) == [message.id]


def test_a_held_claim_is_not_taken_by_a_dispatcher_whose_clock_is_a_day_ahead(app):
    # Two hosts with skewed clocks, or `flask dispatch --now` beside a running worker: `now`
    # says what is due, never whose lease has run out.
    message = signed_up()
    lease = timedelta(seconds=app.config["CLAIM_LEASE_SECONDS"])
    assert claim(NOW, "a" * 32, 10, lease) == [message.id]
    assert claim(NOW + timedelta(days=1), "b" * 32, 10, lease) == []
    assert row(message.id).claim_token == "a" * 32


def test_housekeeping_with_a_clock_far_ahead_leaves_a_held_message_to_its_dispatcher(app):
    message = signed_up()
    lease = timedelta(seconds=app.config["CLAIM_LEASE_SECONDS"])
    claim(NOW, "a" * 32, 10, lease)
    assert skip_expired(message.expires_at + timedelta(days=1)) == 0
    assert (row(message.id).status, row(message.id).claim_token) == ("pending", "a" * 32)


def test_a_dispatcher_whose_claim_was_taken_over_does_not_send(app, smtp):
    signed_up()
    lease = timedelta(seconds=app.config["CLAIM_LEASE_SECONDS"])
    claim(NOW, "a" * 32, 10, lease)  # a dispatcher that died mid-batch
    end_leases()
    assert dispatch(NOW).sent == 1
    assert len(smtp.delivered) == 1
    assert dispatch(NOW).claimed == 0


@pytest.mark.parametrize("connections", [1, 4])
def test_two_concurrent_dispatchers_never_send_one_message_twice(app, smtp, connections):
    app.config["SMTP_CONNECTIONS"] = connections
    event = make_event()
    messages = [signed_up(event, email=f"person{n}@example.org") for n in range(40)]
    db.session.remove()
    start = threading.Barrier(2)
    results, errors = {}, []

    def worker(name):
        try:
            with app.app_context():
                start.wait()
                results[name] = dispatch_due(lambda: NOW, worker_id=name, batch_size=3)
                db.session.remove()
        except Exception as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    delivered_ids = [m["Message-ID"] for m in smtp.messages()]
    assert len(delivered_ids) == len(set(delivered_ids)) == 40
    assert results["one"].sent + results["two"].sent == 40
    statuses = db.session.scalars(sa.select(Message.status)).all()
    assert statuses == ["sent"] * len(messages)


# --- File backend -------------------------------------------------------------------------------


def test_file_backend_writes_one_eml_per_message_named_by_its_message_id(app, tmp_path):
    message = signed_up()
    assert dispatch(NOW).sent == 1
    outbox = tmp_path / "outbox"
    files = list(outbox.iterdir())
    assert [f.name for f in files] == [filename(message.message_id)]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == message.message_id
    assert row(message.id).last_reply.startswith("written to ")


def test_eml_file_names_are_safe_whatever_the_message_id():
    name = filename("<../../etc/passwd\x00@example.org>")
    assert "/" not in name and "\x00" not in name and not name.startswith(".")
    assert name.endswith(".eml")


# --- flask dispatch -----------------------------------------------------------------------------


def test_flask_dispatch_sends_what_is_due_and_prints_one_summary_line(app, runner, tmp_path):
    event = make_event()
    signed_up(event)
    later = signed_up(event, email="later@example.org")
    later.due_at = NOW + timedelta(hours=2)
    db.session.commit()
    result = runner.invoke(args=["dispatch", "--now", "2025-06-20T10:00:00+01:00"])
    assert result.exit_code == 0, result.output
    assert result.output == "dispatch: 1 sent, 0 failed, 0 skipped, 0 retrying\n"
    result = runner.invoke(args=["dispatch", "--now", "2025-06-20T11:00:00Z"])
    assert result.output == "dispatch: 1 sent, 0 failed, 0 skipped, 0 retrying\n"


def test_flask_dispatch_without_now_uses_the_apps_clock(app, runner):
    signed_up()
    app.config["CLOCK"] = lambda: NOW - timedelta(minutes=1)
    assert runner.invoke(args=["dispatch"]).output.startswith("dispatch: 0 sent")
    app.config["CLOCK"] = lambda: NOW
    assert runner.invoke(args=["dispatch"]).output.startswith("dispatch: 1 sent")


@pytest.mark.parametrize("value, words", [
    ("yesterday", "not an ISO 8601 time"),
    ("2025-06-20T09:00:00", "no time zone"),
])
def test_flask_dispatch_refuses_a_malformed_now_in_one_line_and_changes_nothing(
    app, runner, smtp, value, words
):
    message = signed_up()
    result = runner.invoke(args=["dispatch", "--now", value])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert words in result.output and "2025-07-01T09:00:00Z" in result.output
    assert smtp.delivered == []
    untouched = row(message.id)
    assert (untouched.status, untouched.attempts, untouched.claim_token) == ("pending", 0, None)


def test_flask_dispatch_exits_non_zero_when_the_server_refuses_us(app, runner, smtp):
    signed_up()
    smtp.mail_reply = "550 5.7.1 Not allowed"
    result = runner.invoke(args=["dispatch", "--now", "2025-06-20T09:00:00Z"])
    assert result.exit_code == 1
    assert "dispatch: 0 sent, 0 failed, 0 skipped, 0 retrying, 1 left pending" in result.output
    assert "550 5.7.1 Not allowed" in result.output


# --- The embedded scheduler ---------------------------------------------------------------------


@pytest.fixture
def serving(app, monkeypatch):
    """Start the embedded scheduler as under `flask run`; stop it afterwards."""
    app.config["SCHEDULER"] = "embedded"
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    started = []

    def start(reload=None):
        ctx = click.Context(click.Command("run"), info_name="run")
        ctx.params["reload"] = reload
        with ctx:
            result = scheduler.start_embedded_if_serving(app)
        if result is not None:
            started.append(result)
        return result

    yield start
    for running in started:
        running.shutdown(wait=False)


def test_no_scheduler_starts_outside_flask_run(app):
    app.config["SCHEDULER"] = "embedded"
    assert scheduler.start_embedded_if_serving(app) is None  # gunicorn: no click context
    with click.Context(click.Command("dispatch"), info_name="dispatch"):
        assert scheduler.start_embedded_if_serving(app) is None


def test_flask_run_without_reloader_starts_the_dispatch_and_housekeeping_jobs(serving):
    running = serving(reload=False)
    assert running is not None and running.running
    dispatch_job, housekeeping = running.get_job("dispatch"), running.get_job("housekeeping")
    # The jobs themselves skip a tick that comes while their previous run is still going.
    assert dispatch_job.coalesce is True and dispatch_job.max_instances == 2
    assert dispatch_job.trigger.interval == timedelta(seconds=5)
    # Housekeeping is asked often and runs once a day (sooner again after a failure).
    assert housekeeping.coalesce is True and housekeeping.max_instances == 2
    assert housekeeping.trigger.interval == worker.HOUSEKEEPING_RETRY


def test_the_reloaders_parent_starts_no_scheduler_but_its_child_does(serving, monkeypatch):
    assert serving(reload=True) is None
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert serving(reload=None) is None  # --debug turns the reloader on
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    assert serving(reload=True) is not None


def test_scheduler_off_starts_nothing(serving, app):
    app.config["SCHEDULER"] = "off"
    assert serving(reload=False) is None


def test_the_scheduled_job_dispatches_at_the_apps_clock(app, smtp):
    message = signed_up()
    worker.dispatch_job(app)
    assert len(smtp.delivered) == 1
    assert row(message.id).sent_at == NOW
