"""What the replies mailbox brings, acted on: a calendar's decline releases the place as the
attendee's own cancel would, accepts are recorded, a permanent bounce stops all email to the
address; mail for people, and anything not ours, changes nothing; nothing is acted on twice."""

from datetime import timedelta

import sqlalchemy as sa

from extensions import db
from notifications import planner
from notifications.dispatcher import dispatch
from notifications.models import HandledMail, Message, MessageKind
from notifications.reminders import plan_and_commit
from registration import changes, people, replies, services
from registration.models import Event, Person, Registration
from tests.conftest import ATTENDEE, NOW, make_event, make_registration, outbox
from tests.replies_mail import calendar_reply, delivery_report, human_mail

AIKO = ATTENDEE["email"]


def full_session():
    """A one-seat session: Aiko has the seat (her confirmation sent, the week's reminder
    written), Ben waits."""
    event = make_event(capacity=1, confirmed_count=1)
    aiko = make_registration(event)
    people.ensure(aiko.email_key, NOW)
    planner.plan_new_registration(aiko, NOW)
    ben = make_registration(event, status="waitlisted", confirmed_at=None, name="Ben Okafor",
                            email="ben@example.net", email_key="ben@example.net",
                            language="ja", registered_at=NOW + timedelta(minutes=1))
    planner.plan_new_registration(ben, NOW)
    db.session.commit()
    assert dispatch(NOW).sent == 2
    plan_and_commit(event.starts_at - timedelta(days=7))  # her week's reminder, now due
    return event, aiko, ben


def fresh(model, id_):
    return db.session.execute(sa.select(model).where(model.id == id_)
                              .execution_options(populate_existing=True)).scalar_one()


def pending(registration, *kinds):
    query = sa.select(Message).where(Message.registration_id == registration.id,
                                     Message.status == "pending")
    if kinds:
        query = query.where(Message.kind.in_(kinds))
    return db.session.scalars(query.execution_options(populate_existing=True)).all()


def test_a_decline_releases_the_place_promotes_the_next_and_sends_both_emails(app):
    event, aiko, ben = full_session()
    raw = calendar_reply(aiko.ical_uid, AIKO, "DECLINED")

    assert replies.act_on(raw, NOW) == "reply"

    aiko, ben = fresh(Registration, aiko.id), fresh(Registration, ben.id)
    assert (aiko.status, aiko.rsvp, aiko.rsvp_at) == ("cancelled", "declined", NOW)
    assert ben.status == "confirmed"
    assert fresh(Event, event.id).confirmed_count == 1
    assert pending(aiko, MessageKind.REMINDER) == []  # her reminders end with the seat
    assert dispatch(NOW).sent == 2
    mails = {mail["To"].addresses[0].addr_spec: mail for mail in outbox(app)[2:]}
    cancellation = mails[AIKO]
    text = cancellation.get_body(("plain",)).get_content()
    assert "You declined the invitation in your calendar, so your place was released" in text
    assert f"/events/{event.slug}" in text  # the way back: sign up again
    html = cancellation.get_body(("html",)).get_content()
    assert "You declined the invitation in your calendar" in html
    # Ben's seat, with its invite.
    [promotion] = db.session.scalars(sa.select(Message).where(
        Message.registration_id == ben.id, Message.kind == MessageKind.PROMOTION)).all()
    assert promotion.status == "sent"
    assert mails["ben@example.net"]["Message-ID"] == promotion.message_id


def test_reading_the_same_decline_again_changes_nothing(app):
    event, aiko, ben = full_session()
    raw = calendar_reply(aiko.ical_uid, AIKO, "DECLINED")
    assert replies.act_on(raw, NOW) == "reply"
    before = db.session.scalar(sa.select(sa.func.count(Message.id)))

    assert replies.act_on(raw, NOW + timedelta(minutes=1)) == "duplicate"

    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == before
    assert fresh(Registration, aiko.id).rsvp_at == NOW
    assert db.session.scalar(sa.select(sa.func.count(HandledMail.id))) == 1


def test_a_decline_in_japanese_is_answered_in_japanese(app):
    event = make_event()
    aiko = make_registration(event, language="ja")
    db.session.commit()

    assert replies.act_on(calendar_reply(aiko.ical_uid, AIKO, "DECLINED"), NOW) == "reply"

    assert dispatch(NOW).sent == 1
    [mail] = outbox(app)
    assert "カレンダーで招待を辞退されたため" in mail.get_body(("plain",)).get_content()


def test_a_decline_after_the_start_is_only_recorded(app):
    event, aiko, ben = full_session()
    started = event.starts_at + timedelta(minutes=5)

    assert replies.act_on(calendar_reply(aiko.ical_uid, AIKO, "DECLINED"), started) == "reply"

    aiko = fresh(Registration, aiko.id)
    assert (aiko.status, aiko.rsvp) == ("confirmed", "declined")
    assert fresh(Registration, ben.id).status == "waitlisted"


def test_accepted_and_tentative_are_recorded_and_keep_everything(app):
    event, aiko, ben = full_session()
    assert replies.act_on(calendar_reply(aiko.ical_uid, AIKO, "TENTATIVE"), NOW) == "reply"
    assert fresh(Registration, aiko.id).rsvp == "tentative"
    # Outlook's form: the answer as an attached .ics; the latest answer counts.
    later = NOW + timedelta(hours=1)
    raw = calendar_reply(aiko.ical_uid, AIKO.upper(), "ACCEPTED", attached=True)
    assert replies.act_on(raw, later) == "reply"
    aiko = fresh(Registration, aiko.id)
    assert (aiko.status, aiko.rsvp, aiko.rsvp_at) == ("confirmed", "accepted", later)
    assert len(pending(aiko, MessageKind.REMINDER)) == 1


def test_an_answer_we_cannot_place_is_left_for_people(app):
    event, aiko, ben = full_session()
    strangers = [
        calendar_reply("never-issued@forum-signup", AIKO, "DECLINED"),
        # Someone else answering Aiko's invite (a forwarded invite): not hers to decline.
        calendar_reply(aiko.ical_uid, "mallory@example.net", "DECLINED"),
        human_mail(),
        b"\x00\xff not an email at all",
    ]
    for raw in strangers:
        assert replies.act_on(raw, NOW) == "left"
    aiko = fresh(Registration, aiko.id)
    assert (aiko.status, aiko.rsvp) == ("confirmed", None)
    assert db.session.scalar(sa.select(sa.func.count(HandledMail.id))) == 0


def test_a_permanent_bounce_stops_every_email_to_the_address_until_they_sign_up_again(app):
    event, aiko, ben = full_session()
    other = make_registration(make_event(slug="second", starts_at=NOW + timedelta(days=40)))
    planner.plan_new_registration(other, NOW)
    db.session.commit()
    raw = delivery_report(AIKO, "5.1.1")

    assert replies.act_on(raw, NOW) == "bounce"

    person = db.session.scalar(sa.select(Person).where(Person.email_key == aiko.email_key))
    assert person.undeliverable_at == NOW
    assert person.undeliverable_reason.startswith("5.1.1 smtp; 550 5.1.1")
    skipped = db.session.scalars(sa.select(Message).where(Message.skip_reason == "bounced")).all()
    assert {m.registration_id for m in skipped} == {aiko.id, other.id}
    # An email queued after the mark (the session moved) is not sent either.
    changes.change_event(event, {"title": "Climate finance 102"}, NOW)
    # So is the link to all the person's sessions, asked for after the bounce.
    planner.queue_my_link(aiko, NOW)
    db.session.commit()
    summary = dispatch(NOW)
    assert (summary.sent, summary.skipped) == (0, 2)
    late = db.session.scalars(sa.select(Message).where(
        Message.kind.in_((MessageKind.UPDATE, MessageKind.MY_LINK)))).all()
    assert {(m.kind, m.status, m.skip_reason) for m in late} == {
        ("update", "skipped", "bounced"), ("my_link", "skipped", "bounced")}
    assert replies.act_on(raw, NOW) == "duplicate"
    # Signing up again with the address lifts the mark.
    services.sign_up(event, services.Applicant(
        name="Aiko Tanaka", email=AIKO, email_key=aiko.email_key, organisation="City",
        affiliation="local_government", country="JP", timezone="Asia/Tokyo", language="en",
        consent_version="2025-06"), NOW)
    db.session.commit()
    assert fresh(Person, person.id).undeliverable_at is None


def test_a_delay_or_an_address_we_never_wrote_to_changes_nothing(app):
    event, aiko, ben = full_session()
    reports = [
        delivery_report(AIKO, "4.2.2", action="delayed"),
        delivery_report("nobody@example.org", "5.1.1"),
        # A report quoting an email that is not one of ours.
        delivery_report(AIKO, "5.1.1", original_message_id="<forged@elsewhere.example>"),
    ]
    for raw in reports:
        assert replies.act_on(raw, NOW) == "left"
    assert db.session.scalar(sa.select(Person.undeliverable_at)
                             .where(Person.email_key == aiko.email_key)) is None
    assert len(pending(aiko, MessageKind.REMINDER)) == 1


def test_a_bounce_quoting_our_message_id_marks_the_address(app):
    event, aiko, ben = full_session()
    sent = db.session.scalar(sa.select(Message.message_id)
                             .where(Message.registration_id == aiko.id,
                                    Message.status == "sent"))
    raw = delivery_report(AIKO, "5.2.1", original_message_id=sent)
    assert replies.act_on(raw, NOW) == "bounce"
    assert db.session.scalar(sa.select(Person.undeliverable_reason)
                             .where(Person.email_key == aiko.email_key)).startswith("5.2.1")


def test_housekeeping_forgets_what_was_read_once_past_the_retention_period(app):
    from notifications.worker import housekeeping_job

    event, aiko, ben = full_session()
    assert replies.act_on(calendar_reply(aiko.ical_uid, AIKO, "ACCEPTED"), NOW) == "reply"
    later = NOW + timedelta(days=app.config["RETENTION_DAYS"])
    db.session.remove()  # the job works in a context (and a transaction) of its own
    housekeeping_job(app, clock=lambda: later)
    assert db.session.scalar(sa.select(sa.func.count(HandledMail.id))) == 1
    db.session.remove()
    housekeeping_job(app, clock=lambda: later + timedelta(seconds=1))
    assert db.session.scalar(sa.select(sa.func.count(HandledMail.id))) == 0


def test_a_calendar_part_that_is_no_calendar_is_left_for_people(app):
    event, aiko, ben = full_session()
    changes = [
        lambda text: text + text,  # two calendars where one is allowed
        lambda text: "garbage\r\n" + text,
        lambda text: text.replace("METHOD:REPLY", "METHOD:REQUEST"),  # an invite, no answer
        lambda text: text.replace("PARTSTAT=DECLINED", "PARTSTAT=DELEGATED"),
    ]
    broken = [calendar_reply(aiko.ical_uid, AIKO, "DECLINED", change=change)
              for change in changes]
    for raw in broken:
        assert replies.act_on(raw, NOW) == "left"
    assert fresh(Registration, aiko.id).status == "confirmed"
