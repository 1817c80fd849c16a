"""REPLIES_EMAIL, the mailbox that is read: the ORGANIZER of every invite (emailed and
downloaded), so calendar replies reach it, and the envelope sender, so bounces do; people's
replies still go to ORGANISER_EMAIL (Reply-To)."""

import email
from email import policy

import vobject

from notifications.dispatcher import dispatch
from registration import tokens
from tests.conftest import NOW, sending_through_smtp, signed_up

REPLIES = "replies@example.org"


def delivered(smtp):
    [(mail_from, _rcpt_tos, raw)] = smtp.delivered
    return mail_from, email.message_from_bytes(raw, policy=policy.default)


def organizer(calendar: bytes) -> str:
    [vevent] = vobject.readOne(calendar.decode("utf-8")).contents["vevent"]
    scheme, _, address = vevent.organizer.value.partition(":")
    assert scheme.lower() == "mailto", vevent.organizer.value
    return address


def invite_of(mail) -> bytes:
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    return part.get_payload(decode=True)


def test_with_a_replies_mailbox_it_organises_the_invites_and_takes_the_bounces(app_with):
    with app_with(REPLIES_EMAIL=REPLIES) as app, sending_through_smtp(app) as smtp:
        message = signed_up()
        assert dispatch(NOW).sent == 1
        mail_from, mail = delivered(smtp)
        assert mail_from == REPLIES
        assert organizer(invite_of(mail)) == REPLIES
        # A person who answers the email still reaches the organisers.
        assert mail["Reply-To"].addresses[0].addr_spec == "organisers@example.org"
        token = tokens.manage_token(message.registration)
        downloaded = app.test_client().get(f"/r/{token}/invite.ics")
        assert downloaded.status_code == 200
        assert organizer(downloaded.data) == REPLIES


def test_an_envelope_sender_set_explicitly_wins_over_the_replies_mailbox(app_with):
    with app_with(REPLIES_EMAIL=REPLIES, SMTP_ENVELOPE_FROM="bounces@example.org") as app, \
            sending_through_smtp(app) as smtp:
        signed_up()
        assert dispatch(NOW).sent == 1
        mail_from, mail = delivered(smtp)
        assert mail_from == "bounces@example.org"
        assert organizer(invite_of(mail)) == REPLIES


def test_without_a_replies_mailbox_the_organisers_organise_and_mail_from_takes_bounces(app, smtp):
    signed_up()
    assert dispatch(NOW).sent == 1
    mail_from, mail = delivered(smtp)
    assert mail_from == "forum@example.org"
    assert organizer(invite_of(mail)) == "organisers@example.org"
