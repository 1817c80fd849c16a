"""Replies and bounces end to end, through a real Dovecot: an invite sent with the mailbox as
ORGANIZER asks for an answer; the attendee's calendar declines it into the mailbox; `flask
read-mailbox` frees the seat, promotes the next person and sends both emails; reading again
acts on nothing; a 5.1.1 bounce stops the next reminder; people's mail stays unread."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.dispatcher import dispatch
from notifications.models import Message, MessageKind
from registration import services
from registration.models import Event, Registration
from tests.conftest import NOW, dispatch_at, outbox
from tests.imap_server import DovecotServer, missing_dovecot
from tests.replies_mail import REPLIES, calendar_reply, delivery_report, human_mail

if reason := missing_dovecot():
    pytest.skip(reason, allow_module_level=True)

AIKO, BEN = "aiko.tanaka@example.org", "ben@example.net"


@pytest.fixture(scope="module")
def dovecot():
    with DovecotServer() as server:
        yield server


@pytest.fixture
def app(app_with, dovecot):
    """The app reading the module's Dovecot (emptied), its address the replies address."""
    dovecot.empty()
    with app_with(**dovecot.settings()) as app:
        yield app


def applicant(email, name, language="en"):
    return services.Applicant(
        name=name, email=email, email_key=email, organisation="City of Yokohama",
        affiliation="local_government", country="JP", timezone="Asia/Tokyo", language=language,
        consent_version="2025-06")


def read_mailbox(app, now=NOW):
    result = app.test_cli_runner().invoke(args=["read-mailbox", "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def invite_of(mail):
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    return part.get_content().replace("\r\n ", "")  # lines unfolded


def test_a_calendar_decline_frees_the_seat_promotes_the_next_and_is_acted_on_once(app, dovecot):
    event = Event(slug="one-seat", title="Climate finance 101", starts_at=NOW + timedelta(days=30),
                  ends_at=NOW + timedelta(days=30, hours=1), timezone="Asia/Tokyo", capacity=1,
                  created_at=NOW, updated_at=NOW)
    db.session.add(event)
    db.session.commit()
    services.sign_up(event, applicant(AIKO, "Aiko Tanaka"), NOW)
    services.sign_up(event, applicant(BEN, "Ben Okafor", "ja"), NOW)
    db.session.commit()
    assert dispatch(NOW).sent == 2
    invite = invite_of(outbox(app)[0])
    # With the mailbox read, the invite asks for an answer, to the mailbox.
    assert f'ORGANIZER;CN="Forum Sign-up":mailto:{REPLIES}' in invite
    assert "RSVP=TRUE" in invite
    uid = next(line[4:] for line in invite.splitlines() if line.startswith("UID:"))
    reply = calendar_reply(uid, AIKO, "DECLINED")
    dovecot.append(reply)
    dovecot.append(human_mail())

    assert read_mailbox(app) == ("mailbox INBOX: 2 examined, 1 reply, 0 bounces, 0 duplicates, "
                                 "1 left for people, 0 failed")

    states = dict(db.session.execute(sa.select(Registration.email, Registration.status)).all())
    assert states == {AIKO: "cancelled", BEN: "confirmed"}
    assert dispatch(NOW).sent == 2
    cancellation, promotion = outbox(app)[2:]
    assert cancellation["To"].addresses[0].addr_spec == AIKO
    assert "You declined the invitation in your calendar" in cancellation.get_body(
        ("plain",)).get_content()
    assert promotion["To"].addresses[0].addr_spec == BEN
    assert "METHOD:REQUEST" in invite_of(promotion)
    # The reply left the folder; people's mail stayed, unread.
    [left] = dovecot.messages("INBOX").values()
    assert "\\Seen" not in left
    assert len(dovecot.messages("Processed")) == 1

    # The same answer again (a second copy, or a crash before the move): nothing more happens.
    dovecot.append(reply)
    before = db.session.scalar(sa.select(sa.func.count(Message.id)))
    assert read_mailbox(app, NOW + timedelta(minutes=1)) == (
        "mailbox INBOX: 1 examined, 0 replies, 0 bounces, 1 duplicate, 0 left for people, "
        "0 failed")
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == before
    assert len(dovecot.messages("Processed")) == 2


def test_a_permanent_bounce_stops_the_next_reminder_and_a_delay_changes_nothing(app, dovecot):
    event = Event(slug="webinar", title="Climate finance 101", starts_at=NOW + timedelta(days=30),
                  ends_at=NOW + timedelta(days=30, hours=1), timezone="Asia/Tokyo",
                  created_at=NOW, updated_at=NOW)
    db.session.add(event)
    db.session.commit()
    aiko = services.sign_up(event, applicant(AIKO, "Aiko Tanaka"), NOW)
    db.session.commit()
    assert dispatch(NOW).sent == 1
    sent_id = outbox(app)[0]["Message-ID"]
    dovecot.append(delivery_report(AIKO, "4.2.2", action="delayed"))
    assert read_mailbox(app).endswith("0 bounces, 0 duplicates, 1 left for people, 0 failed")
    dovecot.append(delivery_report(AIKO, "5.1.1", original_message_id=sent_id))

    assert "1 bounce," in read_mailbox(app)

    week_before = event.starts_at - timedelta(days=7)
    assert dispatch_at(week_before).sent == 0
    reminder = db.session.scalars(sa.select(Message).where(
        Message.registration_id == aiko.id, Message.kind == MessageKind.REMINDER)).all()
    assert {m.skip_reason for m in reminder} == {"bounced"}
    assert len(dovecot.messages("INBOX")) == 1  # the delay, for people
