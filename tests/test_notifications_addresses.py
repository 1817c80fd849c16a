"""Addresses beyond ASCII on their way out: IDNA 2008 domains, SMTPUTF8 local parts, and the
Unicode form people read."""

import email
from email import policy

import pytest

from extensions import db
from notifications.dispatcher import dispatch
from notifications.mail import build_message
from tests.conftest import NOW, make_event, row, sending_through_smtp, signed_up


@pytest.fixture
def smtputf8_server(app):
    """A real SMTP server offering SMTPUTF8, and the app sending through it."""
    with sending_through_smtp(app, enable_SMTPUTF8=True) as handler:
        yield handler


@pytest.fixture
def plain_server(app):
    """A real SMTP server without SMTPUTF8 (aiosmtpd's Controller offers it unless told)."""
    with sending_through_smtp(app, enable_SMTPUTF8=False) as handler:
        yield handler


def test_a_sharp_s_domain_goes_to_its_idna_2008_form_never_to_fass_de(app):
    # A row written before addresses were stored in their wire form holds the Unicode domain.
    message = signed_up(email="anna@faß.de")
    mail = build_message(message, app.config, NOW)
    assert mail.recipients == ("anna@xn--fa-hia.de",)
    assert b"fass.de" not in mail.data
    assert b"anna@xn--fa-hia.de" in mail.data
    assert not mail.smtputf8


def test_an_international_domain_is_delivered_to_its_ascii_form_by_a_plain_server(
    app, plain_server
):
    message = signed_up(email="anna@xn--fa-hia.de")
    assert dispatch(NOW).sent == 1
    [(_, rcpt_tos, raw)] = plain_server.delivered
    assert rcpt_tos == ["anna@xn--fa-hia.de"]
    assert raw.isascii()
    assert row(message.id).status == "sent"


def test_a_local_part_beyond_ascii_goes_with_smtputf8_when_the_server_offers_it(
    app, smtputf8_server
):
    message = signed_up(email="josé@xn--fa-hia.de", name="José Müller")
    assert dispatch(NOW).sent == 1
    [(_, rcpt_tos, raw)] = smtputf8_server.delivered
    assert rcpt_tos == ["josé@xn--fa-hia.de"]
    # RFC 6532: the header holds the address in UTF-8, the domain as its owner reads it.
    assert "To: José Müller <josé@faß.de>".encode() in raw
    parsed = email.message_from_string(raw.decode("utf-8"), policy=policy.default)
    assert parsed["To"].addresses[0].display_name == "José Müller"
    assert parsed["To"].addresses[0].addr_spec == "josé@faß.de"
    assert row(message.id).status == "sent"


def test_without_smtputf8_such_a_message_fails_with_a_reason_and_the_rest_still_go(
    app, plain_server
):
    event = make_event()
    unicode_local = signed_up(event, email="josé@xn--fa-hia.de")
    ascii_one = signed_up(event, email="anna@xn--fa-hia.de")
    summary = dispatch(NOW)
    assert (summary.sent, summary.failed) == (1, 1)
    assert [rcpt for _, rcpt, _ in plain_server.delivered] == [["anna@xn--fa-hia.de"]]
    failed = row(unicode_local.id)
    assert failed.status == "failed"
    assert "does not offer SMTPUTF8" in failed.last_reply
    # The address is never mangled into something else and sent.
    assert row(ascii_one.id).status == "sent"


def test_the_console_shows_addresses_with_their_domain_in_unicode(app, admin):
    message = signed_up(email="anna@xn--fa-hia.de")
    message.status, message.last_reply = "failed", "550 5.1.1 no such user"
    db.session.commit()
    page = admin.get(f"/admin/events/{message.event.slug}").get_data(as_text=True)
    assert page.count("anna@faß.de") == 2  # the people list and the failed email
    assert "xn--fa-hia" not in page
