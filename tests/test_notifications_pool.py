"""The dispatcher with several SMTP connections (SMTP_CONNECTIONS), against real aiosmtpd
servers: every message once, each outcome recorded as with one connection, a dropped
connection costing only its own message a retry, a stop finishing what is in flight."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.dispatcher import dispatch
from tests.conftest import NOW, make_event, row, sending_through_smtp, signed_up
from tests.smtp_servers import SMTPHandler

REPLY = "250 2.0.0 Ok: queued as 4F2A9"


@pytest.fixture
def pooled(app):
    """The app set to four SMTP connections, the default outside tests."""
    app.config["SMTP_CONNECTIONS"] = 4
    return app


def queue_mail(count: int, prefix: str = "p") -> list:
    event = make_event()
    return [signed_up(event, email=f"{prefix}{n}@example.org") for n in range(count)]


def hold_until_connections(handler: SMTPHandler, count: int) -> threading.Thread:
    """Hold every MAIL FROM until `count` conversations have begun, so the batch is sure to
    run on that many connections at once (without this, a fast server could answer each one
    before the next message is built)."""
    stall = handler.stall_at_mail()

    def release():
        handler.wait_until(lambda: len(handler.sessions) >= count, 10)
        stall.release()

    releaser = threading.Thread(target=release)
    releaser.start()
    return releaser


def test_four_connections_deliver_every_message_once_and_mark_each_with_its_reply(pooled, smtp):
    messages = queue_mail(12)
    threads_using_the_database = set()

    def note_thread(*_):
        threads_using_the_database.add(threading.current_thread().name)

    releaser = hold_until_connections(smtp, 4)
    sa.event.listen(db.engine, "before_cursor_execute", note_thread)
    try:
        summary = dispatch(NOW)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note_thread)
        releaser.join()

    assert (summary.sent, summary.failed, summary.retrying, summary.released) == (12, 0, 0, 0)
    assert len(smtp.sessions) == 4
    assert smtp.message_ids() == {message.message_id: 1 for message in messages}
    # The sending threads only talk SMTP: every query ran in the dispatcher's own thread.
    assert threads_using_the_database == {threading.current_thread().name}
    for message in messages:
        sent = row(message.id)
        assert (sent.status, sent.attempts, sent.claim_token, sent.sent_at) == (
            "sent", 1, None, NOW)
        assert sent.last_reply == REPLY
        assert [(e["outcome"], e["reply"]) for e in sent.attempt_log] == [("sent", REPLY)]


class DroppingHandler(SMTPHandler):
    """Closes the connection instead of answering the DATA of one address's first message."""

    def __init__(self, address: str):
        super().__init__()
        self.address = address
        self.dropped = False

    async def handle_DATA(self, server, session, envelope):
        if self.address in envelope.rcpt_tos and not self.dropped:
            self.dropped = True
            server.transport.close()
            return "421 4.4.2 Closing"  # never reaches the client: the connection is gone
        return await super().handle_DATA(server, session, envelope)


def test_a_connection_dropped_mid_batch_retries_its_message_and_the_others_go_once(pooled):
    with sending_through_smtp(pooled, handler=DroppingHandler("drop@example.org")) as smtp:
        event = make_event()
        others = [signed_up(event, email=f"p{n}@example.org") for n in range(4)]
        dropped = signed_up(event, email="drop@example.org")
        others += [signed_up(event, email=f"q{n}@example.org") for n in range(7)]

        summary = dispatch(NOW)

        assert (summary.sent, summary.retrying, summary.failed) == (11, 1, 0)
        assert smtp.dropped
        assert smtp.message_ids() == {message.message_id: 1 for message in others}
        assert all(row(message.id).status == "sent" for message in others)
        retried = row(dropped.id)
        assert (retried.status, retried.attempts, retried.claim_token) == ("pending", 1, None)
        assert NOW < retried.due_at <= NOW + timedelta(minutes=1)
        assert retried.attempt_log[-1]["outcome"] == "transient"
        assert retried.last_reply.startswith("connection closed")

        assert dispatch(retried.due_at).sent == 1
        assert smtp.message_ids() == {message.message_id: 1 for message in [*others, dropped]}
        assert row(dropped.id).status == "sent"


@pytest.mark.parametrize("connections", [1, 4])
def test_4xx_and_5xx_answers_are_recorded_alike_on_one_connection_or_four(
    app, smtp, connections
):
    app.config["SMTP_CONNECTIONS"] = connections
    event = make_event()
    good = [signed_up(event, email=f"p{n}@example.org") for n in range(6)]
    refused = signed_up(event, email="nobody@example.org")
    greylisted = signed_up(event, email="later@example.org")
    smtp.rcpt_replies["nobody@example.org"] = "550 5.1.1 No such user"
    smtp.refuse_next("later@example.org", "451 4.7.1 Greylisted, try again later")

    summary = dispatch(NOW)

    assert (summary.sent, summary.failed, summary.retrying) == (6, 1, 1)
    assert smtp.message_ids() == {message.message_id: 1 for message in good}
    failed = row(refused.id)
    assert (failed.status, failed.last_reply, failed.claim_token) == (
        "failed", "550 5.1.1 No such user", None)
    later = row(greylisted.id)
    assert (later.status, later.attempts, later.claim_token) == ("pending", 1, None)
    assert NOW < later.due_at <= NOW + timedelta(minutes=1)
    assert [(e["outcome"], e["reply"]) for e in later.attempt_log] == [
        ("transient", "451 4.7.1 Greylisted, try again later")]


@pytest.mark.parametrize("connections", [1, 4])
def test_a_refused_sender_stops_the_batch_and_leaves_all_pending_on_one_connection_or_four(
    app, smtp, connections
):
    app.config["SMTP_CONNECTIONS"] = connections
    messages = queue_mail(6)
    smtp.mail_reply = "553 5.7.1 Sender address rejected"

    summary = dispatch(NOW)

    assert summary.stopped and "553 5.7.1 Sender address rejected" in summary.stopped
    assert (summary.sent, summary.failed, summary.released) == (0, 0, 6)
    assert [(row(m.id).status, row(m.id).attempts, row(m.id).claim_token)
            for m in messages] == [("pending", 0, None)] * 6
    smtp.mail_reply = None
    assert dispatch(NOW).sent == 6


def test_a_stop_request_finishes_the_messages_in_flight_and_gives_back_the_rest(pooled, smtp):
    messages = queue_mail(12)

    summary = dispatch(NOW, should_stop=lambda: len(smtp.delivered) >= 1)

    assert summary.sent >= 1 and summary.sent + summary.released == 12
    rows = [row(message.id) for message in messages]
    assert all(r.claim_token is None for r in rows)
    sent = {r.message_id for r in rows if r.status == "sent"}
    assert len(sent) == summary.sent
    assert smtp.message_ids() == dict.fromkeys(sent, 1)
    assert [r.attempts for r in rows if r.status == "pending"] == [0] * summary.released

    assert dispatch(NOW).sent == summary.released
    assert smtp.message_ids() == {message.message_id: 1 for message in messages}


def test_an_unexpected_error_on_one_connection_still_marks_what_the_others_sent(
    pooled, smtp, monkeypatch
):
    from notifications import transports

    messages = queue_mail(4)
    real_send = transports.SMTPTransport.send
    stall = smtp.stall_at_mail()  # the others wait at MAIL FROM until the error is out
    raised = threading.Event()

    def send(transport, mail):
        if "p0@example.org" in mail.recipients:
            # Once the three others are on the wire (held at MAIL FROM by the server).
            smtp.wait_until(lambda: len(smtp.sessions) >= 3, 10)
            raised.set()
            raise RuntimeError("a bug in one sending thread")
        return real_send(transport, mail)

    def release():
        raised.wait(10)
        stall.release()

    monkeypatch.setattr(transports.SMTPTransport, "send", send)
    releaser = threading.Thread(target=release)
    releaser.start()
    with pytest.raises(RuntimeError):
        dispatch(NOW)
    releaser.join()
    first, *others = (row(m.id) for m in messages)
    # The three that reached the server are marked sent, not left to be sent again.
    assert [(m.status, m.claim_token) for m in others] == [("sent", None)] * 3
    assert sorted(smtp.message_ids().values()) == [1, 1, 1]
    # The one whose thread failed may have reached the server: it keeps its lease.
    assert first.status == "pending" and first.claim_token is not None
