"""Personal data's end: the retention purge, an attendee deleting their own data, and the
audit log that records what organisers did."""

import re
from datetime import timedelta

import sqlalchemy as sa

from extensions import db
from notifications.dispatcher import dispatch
from notifications.models import Message
from organisers.models import AuditEntry
from registration import changes, services, tokens
from registration.models import Event, Registration
from tests.conftest import NOW, make_event, outbox, sign_up

PERSONAL = ("name", "email", "organisation")


def registrations():
    return db.session.scalars(sa.select(Registration).order_by(Registration.id)).all()


def ended_event_with_attendees(client):
    event = make_event(starts_at=NOW + timedelta(days=1))
    sign_up(client, event.slug, email="one@example.org", name="Ana Uno")
    sign_up(client, event.slug, email="two@example.org", name="Bo Two")
    dispatch(NOW)
    return event


def test_purge_anonymises_registrations_retention_days_after_their_event_ended(app, client,
                                                                             runner):
    event = ended_event_with_attendees(client)
    other = make_event(slug="later-session", starts_at=NOW + timedelta(days=60))
    sign_up(client, other.slug, email="three@example.org")
    just_before = (event.ends_at + timedelta(days=90) - timedelta(minutes=1)).isoformat()
    result = runner.invoke(args=["purge", "--now", just_before])
    assert "Nothing to purge." in result.output

    after = (event.ends_at + timedelta(days=90, minutes=1)).isoformat()
    dry = runner.invoke(args=["purge", "--dry-run", "--now", after])
    assert dry.exit_code == 0 and "Dry run" in dry.output and "2 registrations" in dry.output
    assert all(r.anonymised_at is None for r in registrations())

    result = runner.invoke(args=["purge", "--now", after])
    assert result.exit_code == 0, result.output
    assert "2 registrations anonymised" in result.output and event.slug in result.output
    db.session.expire_all()
    gone, kept = registrations()[:2], registrations()[2]
    for registration in gone:
        assert all(getattr(registration, field) == "" for field in PERSONAL)
        assert registration.anonymised_at is not None
        # Statistics stay.
        assert (registration.affiliation, registration.country, registration.status) == (
            "local_government", "JP", "confirmed")
    assert kept.email == "three@example.org"
    sent = db.session.scalars(sa.select(Message).where(Message.event_id == event.id)).all()
    assert sent and all(m.recipient == "" and m.last_reply is None for m in sent)
    again = runner.invoke(args=["purge", "--now", after])
    assert "Nothing to purge." in again.output


def test_purged_registrations_manage_link_stops_working(app, client):
    from registration import retention

    event = ended_event_with_attendees(client)
    registration = registrations()[0]
    link = f"/r/{tokens.manage_token(registration)}"
    assert client.get(link).status_code == 200
    retention.purge(event.ends_at + timedelta(days=91), 90)
    db.session.commit()
    assert client.get(link).status_code == 404


def test_malformed_now_for_purge_is_one_clear_line(app, runner):
    result = runner.invoke(args=["purge", "--now", "next tuesday"])
    assert result.exit_code != 0
    assert "ISO 8601" in result.output and "Traceback" not in result.output


def test_delete_my_data_asks_first_and_the_question_changes_nothing(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registrations()[0]
    page = client.get(f"/r/{tokens.manage_token(registration)}/delete")
    assert page.status_code == 200 and "can't be undone" in page.get_data(as_text=True)
    db.session.refresh(registration)
    assert registration.anonymised_at is None and registration.status == "confirmed"


def test_delete_my_data_cancels_promotes_sends_the_cancel_and_anonymises_at_once(app,
                                                                               client):
    event = make_event(capacity=1)
    sign_up(client, event.slug, email="leaver@example.org", name="Lee Ver")
    sign_up(client, event.slug, email="next@example.org")
    leaver = services.find_active(event, "leaver@example.org")
    path = f"/r/{tokens.manage_token(leaver)}/delete"
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get(path).get_data(as_text=True)).group(1)
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("/deleted")
    db.session.expire_all()
    leaver_row = db.session.get(Registration, leaver.id)
    assert leaver_row.status == "cancelled" and leaver_row.anonymised_at is not None
    assert all(getattr(leaver_row, field) == "" for field in PERSONAL)
    assert services.find_active(event, "next@example.org").status == "confirmed"
    assert client.get(path.removesuffix("/delete")).status_code == 404

    # The cancellation still reaches the person (its address kept on that one message)…
    dispatch(NOW)
    cancel = next(m for m in outbox(app) if str(m["Subject"]).startswith("Cancelled"))
    assert cancel["To"].addresses[0].addr_spec == "leaver@example.org"
    part = next(p for p in cancel.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "CANCEL"
    assert "ATTENDEE" in part.get_content() and "leaver@example.org" in part.get_content()
    # …and once sent, not even the outbox remembers the address.
    rows = db.session.scalars(sa.select(Message).where(Message.registration_id == leaver.id))
    assert {m.recipient for m in rows} == {""}


def test_delete_my_data_needs_the_csrf_token(client):
    event = make_event()
    sign_up(client, event.slug)
    registration = registrations()[0]
    response = client.post(f"/r/{tokens.manage_token(registration)}/delete")
    assert response.status_code == 400
    db.session.refresh(registration)
    assert registration.anonymised_at is None


def test_the_audit_log_shows_who_did_what(admin):
    page = admin.get("/admin/audit")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "signed in" in text and "anna.organiser@example.org" in text
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == 1


def test_the_daily_housekeeping_purges_what_is_past_the_retention_period(app, client):
    from notifications.worker import housekeeping_job

    ends_at = ended_event_with_attendees(client).ends_at
    db.session.commit()  # the job works in its own session; ours holds no lock meanwhile
    housekeeping_job(app, clock=lambda: ends_at + timedelta(days=30))
    assert all(r.anonymised_at is None for r in registrations())
    db.session.commit()
    housekeeping_job(app, clock=lambda: ends_at + timedelta(days=91))
    db.session.expire_all()
    assert all(r.anonymised_at is not None and r.email == "" for r in registrations())


def confirmed_after_the_end(app, client, recording_url="https://video.example.org/r/1"):
    """A seat holder of a session (with a recording), and the clock moved past its end."""
    event = make_event(starts_at=NOW + timedelta(hours=1), capacity=5,
                       recording_url=recording_url)
    sign_up(client, event.slug)
    registration = registrations()[0]
    after_end = event.ends_at + timedelta(minutes=5)
    app.config["CLOCK"] = lambda: after_end
    return event, registration, after_end


def test_deleting_my_data_after_the_end_anonymises_without_cancelling(app, client):
    event, registration, _ = confirmed_after_the_end(app, client)
    path = f"/r/{tokens.manage_token(registration)}/delete"
    page = client.get(path).get_data(as_text=True)
    assert "is not cancelled" in page and "will be <strong>cancelled</strong>" not in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    response = client.post(path, data={"csrf_token": token})

    assert response.status_code == 303
    db.session.expire_all()
    row = db.session.get(Registration, registration.id)
    assert row.anonymised_at is not None and row.email == ""
    assert row.status == "confirmed" and row.cancelled_at is None
    assert db.session.get(Event, event.id).confirmed_count == 1
    kinds = {(m.kind, m.status) for m in db.session.scalars(sa.select(Message))}
    assert ("cancellation", "pending") not in kinds
    assert ("follow_up", "skipped") in kinds


def test_a_recording_set_after_the_data_was_deleted_sends_no_follow_up(app, client):
    from registration import retention

    event, registration, after_end = confirmed_after_the_end(app, client, recording_url=None)
    retention.anonymise([registration], after_end)
    db.session.commit()

    change = changes.change_event(event, {"recording_url": "https://video.example.org/r/2"},
                                   after_end)
    db.session.commit()

    assert change.follow_ups == 0
    assert db.session.scalars(sa.select(Message).where(
        Message.kind == "follow_up", Message.status == "pending")).all() == []


def test_a_follow_up_a_dispatcher_held_while_the_data_was_deleted_is_skipped_not_sent(app,
                                                                                    client):
    from registration import retention

    _, registration, after_end = confirmed_after_the_end(app, client)
    [follow_up] = db.session.scalars(sa.select(Message).where(Message.kind == "follow_up"))
    held = sa.update(Message).where(Message.id == follow_up.id)
    db.session.execute(held.values(claim_token="other-dispatcher",
                                   lease_until=after_end + timedelta(minutes=5)))
    retention.anonymise([registration], after_end)
    db.session.execute(held.values(claim_token=None, lease_until=None))  # its claim given back
    db.session.commit()

    dispatch(after_end)

    db.session.expire_all()
    follow_up = db.session.get(Message, follow_up.id)
    assert (follow_up.status, follow_up.skip_reason) == ("skipped", "personal data deleted")
    assert outbox(app) == []
