"""What the dispatcher writes to the log: messages by id and kind, SMTP replies with their
addresses masked, never a person's address, name or manage link (the console keeps the rest)."""

import logging

import pytest

from notifications.dispatcher import dispatch
from notifications.transports import masked
from registration import tokens
from tests.conftest import NOW, row, signed_up

ADDRESS = "ruth.okafor@example.org"
NAME = "Ruth Okafor"


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.DEBUG, logger="notifications")
    return caplog


def assert_nothing_personal(text: str, message) -> None:
    assert ADDRESS not in text and "ruth.okafor" not in text
    assert NAME not in text
    assert tokens.manage_token(message.registration) not in text


@pytest.mark.parametrize("reply, status", [
    (f"550 5.1.1 <{ADDRESS}>: Recipient address rejected: User unknown", "failed"),
    (f"451 4.2.0 <{ADDRESS}>: Recipient greylisted, try again later", "pending"),
])
def test_a_reply_quoting_the_address_is_logged_masked_and_kept_whole_for_the_console(
    app, smtp, log, reply, status
):
    message = signed_up(email=ADDRESS, name=NAME)
    smtp.rcpt_replies[ADDRESS] = reply
    dispatch(NOW)
    assert row(message.id).status == status
    assert row(message.id).last_reply == reply  # the console shows all of it
    assert f"message {message.id} (confirmation)" in log.text
    assert "r***@example.org" in log.text
    assert_nothing_personal(log.text, message)


def test_a_refused_sender_is_logged_and_summarised_masked(app, smtp, log):
    message = signed_up(email=ADDRESS, name=NAME)
    smtp.mail_reply = "553 5.7.1 <forum@example.org>: Sender address rejected"
    summary = dispatch(NOW)
    assert "DISPATCH STOPPED" in log.text and "f***@example.org" in log.text
    assert "forum@example.org" not in log.text
    assert "forum@example.org" not in summary.stopped
    assert_nothing_personal(log.text, message)


def test_a_message_that_cannot_be_built_is_logged_by_id_and_kind_without_its_data(
    app, smtp, log, monkeypatch
):
    from notifications import dispatcher

    message = signed_up(email=ADDRESS, name=NAME)

    def build(message, config, now):
        raise ValueError(f"no template for {message.registration.name} <{message.recipient}>")

    monkeypatch.setattr(dispatcher, "build_message", build)
    dispatch(NOW)
    assert f"message {message.id} (confirmation): could not be built (ValueError)" in log.text
    assert ADDRESS in row(message.id).last_reply  # the console still says what went wrong
    assert_nothing_personal(log.text, message)


@pytest.mark.parametrize("reply, expected", [
    ("550 5.1.1 <anna@example.org>: Recipient address rejected",
     "550 5.1.1 <a***@example.org>: Recipient address rejected"),
    ("550 josé@faß.de and bob@example.org unknown", "550 j***@faß.de and b***@example.org unknown"),
    ("250 2.0.0 Ok: queued as 4F2A9", "250 2.0.0 Ok: queued as 4F2A9"),
])
def test_masking_keeps_the_first_letter_and_the_domain_of_each_address(reply, expected):
    assert masked(reply) == expected
