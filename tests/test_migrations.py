"""The migrations build exactly the schema the models describe, and undo cleanly, on both
databases."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from extensions import db

# Columns the models have that are newer than the revisions the tests below go back to; the
# ORM writes every column, so they are there while those tests write their old rows.
NEWER_COLUMNS = {"registrations": {"unsubscribed_at": "TIMESTAMP", "rsvp": "VARCHAR(20)",
                                   "rsvp_at": "TIMESTAMP", "added_by_organiser_id": "INTEGER"}}


@contextmanager
def newer_columns():
    """The models' newer columns added to a downgraded database, and dropped again after."""
    for table, columns in NEWER_COLUMNS.items():
        for column, type_ in columns.items():
            db.session.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {type_}"))
    yield
    db.session.commit()
    for table, columns in NEWER_COLUMNS.items():
        for column in columns:
            db.session.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    db.session.commit()


def test_migrated_schema_matches_the_models(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_downgrade_to_nothing_and_upgrade_again(app):
    downgrade(revision="base")
    assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    tables = set(sa.inspect(db.engine).get_table_names())
    assert {"events", "registrations", "messages"} <= tables


ENUM_TABLES = ("events", "registrations", "messages", "announcements")
MODELS_ONLY = "models_only"


def _check_constraints(conn, schema=None) -> dict[tuple[str, str], str]:
    inspector = sa.inspect(conn)
    return {(table, check["name"]): check["sqltext"] for table in ENUM_TABLES
            for check in inspector.get_check_constraints(table, schema=schema)}


def test_migrated_check_constraints_are_the_ones_the_models_declare(app):
    # Alembic's comparison skips CHECK constraints: compare what each database itself says of
    # the migrated tables and of the same tables built from the models alone.
    with db.engine.connect() as conn:
        migrated = _check_constraints(conn)
    if db.engine.dialect.name == "sqlite":
        scratch = sa.create_engine("sqlite://")
        db.metadata.create_all(scratch)
        with scratch.connect() as conn:
            modelled = _check_constraints(conn)
        scratch.dispose()
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {MODELS_ONLY}")
            db.metadata.create_all(conn.execution_options(
                schema_translate_map={None: MODELS_ONLY}))
            modelled = _check_constraints(conn, schema=MODELS_ONLY)
            conn.exec_driver_sql(f"DROP SCHEMA {MODELS_ONLY} CASCADE")
    assert len(modelled) >= 12
    assert migrated == modelled


def test_statuses_and_kinds_read_back_as_their_enums(app):
    from notifications.models import IcalMethod, Message, MessageKind, MessageStatus
    from registration.models import (
        Event,
        EventKind,
        EventStatus,
        Language,
        Pillar,
        Registration,
        RegistrationStatus,
    )
    from tests.conftest import make_event, signed_up

    signed_up(make_event(pillar="exchange"))
    db.session.commit()
    db.session.expire_all()
    event = db.session.scalar(sa.select(Event))
    registration = db.session.scalar(sa.select(Registration))
    message = db.session.scalar(sa.select(Message))
    assert [type(value) for value in (
        event.kind, event.pillar, event.language, event.status, registration.status,
        registration.language, message.kind, message.status, message.ical_method,
    )] == [EventKind, Pillar, Language, EventStatus, RegistrationStatus, Language, MessageKind,
           MessageStatus, IcalMethod]
    assert message.kind == MessageKind.CONFIRMATION == "confirmation"


def test_the_database_refuses_a_status_no_enum_has(app):
    from tests.conftest import make_event

    event_id = make_event().id
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text("UPDATE events SET status = 'postponed' WHERE id = :id"),
                           {"id": event_id})
    db.session.rollback()


def _events_then_downgrade(revision: str, *events):
    """Events made at the newest schema, kept loaded and detached, then the schema taken back
    to `revision`: the model names columns (public_uid) an older events table lacks, and the
    registrations made afterwards only need the events' ids."""
    for event in events:
        db.session.refresh(event)
    db.session.remove()
    downgrade(revision=revision)
    return events


def test_upgrading_rewrites_stored_international_addresses_to_their_wire_form(app):
    from tests.conftest import make_event, make_registration

    [event] = _events_then_downgrade("0004", make_event())
    with newer_columns():
        # As rows were written before: the Unicode domain, its case-folded key (faß → fass).
        old = make_registration(event, email="Anna@faß.de", email_key="anna@fass.de")
        plain = make_registration(event, email="ben@example.org", email_key="ben@example.org")
        ids = old.id, plain.id
    db.session.remove()
    upgrade()
    rows = dict(db.session.execute(sa.text(
        "SELECT id, email || ' ' || email_key FROM registrations ORDER BY id")).all())
    assert rows == {ids[0]: "Anna@xn--fa-hia.de anna@xn--fa-hia.de",
                    ids[1]: "ben@example.org ben@example.org"}


def test_upgrading_gives_every_address_with_data_a_person_whose_link_works(app):
    from registration import people, tokens
    from tests.conftest import make_event, make_registration

    first, second = _events_then_downgrade("0005", make_event(), make_event(slug="second"))
    assert "people" not in sa.inspect(db.engine).get_table_names()
    with newer_columns():
        make_registration(first, email="Aiko@example.org", email_key="aiko@example.org")
        make_registration(second, email="aiko@example.org", email_key="aiko@example.org")
        make_registration(first, email="ben@example.org", status="cancelled")
        make_registration(second, email="", email_key="deleted:9",
                          anonymised_at=first.created_at)
    db.session.remove()
    upgrade()
    keys = db.session.scalars(sa.text("SELECT email_key FROM people ORDER BY email_key")).all()
    assert keys == ["aiko@example.org", "ben@example.org"]
    person = people.find("aiko@example.org")
    assert people.find_by_token(tokens.me_token(person)).id == person.id
    digests = db.session.scalars(sa.text("SELECT token_digest FROM people")).all()
    assert len(set(digests)) == 2 and tokens.me_token(person) not in str(digests)


def test_the_outbox_takes_a_link_email_after_upgrading_and_refuses_it_before(app):
    from tests.conftest import make_event, make_registration

    registration = make_registration(make_event())
    db.session.commit()
    insert = sa.text(
        "INSERT INTO messages (registration_id, event_id, kind, status, message_id, recipient, "
        "created_at, due_at, expires_at, attempts) VALUES (:r, :e, 'my_link', 'pending', "
        ":m, 'a@example.org', :t, :t, :t, 0)")
    values = {"r": registration.id, "e": registration.event_id, "t": registration.registered_at,
              "m": "<1@example.org>"}
    db.session.execute(insert, values)
    db.session.commit()
    db.session.remove()
    downgrade(revision="0005")
    try:
        assert db.session.scalar(sa.text("SELECT count(*) FROM messages")) == 0
        with pytest.raises(sa.exc.IntegrityError):
            db.session.execute(insert, {**values, "m": "<2@example.org>"})
        db.session.rollback()
    finally:
        # The PostgreSQL database is shared by the run's tests: leave it at the newest schema.
        db.session.remove()
        upgrade()


def test_upgrading_gives_every_event_its_own_random_public_uid_and_downgrading_drops_it(app):
    import uuid

    from tests.conftest import make_event

    events = _events_then_downgrade("0006", make_event(), make_event(slug="second"),
                                    make_event(slug="third"))
    assert "public_uid" not in {c["name"] for c in sa.inspect(db.engine).get_columns("events")}
    db.session.remove()
    upgrade()
    rows = dict(db.session.execute(sa.text("SELECT id, public_uid FROM events")).all())
    assert set(rows) == {event.id for event in events}
    uids = [uuid.UUID(value) for value in rows.values()]
    assert len(set(uids)) == 3 and all(value.version == 4 for value in uids)
    # The stored UIDs are new ones, not the ones the events had before the downgrade.
    assert not {str(value) for value in uids} & {event.public_uid for event in events}
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text("UPDATE events SET public_uid = :uid"),
                           {"uid": str(uids[0])})
    db.session.rollback()


def test_upgrading_keeps_the_registrations_of_events_sqlite_makes_anew(app):
    # SQLite changes the events table by copying it; the copy must not cascade a delete.
    from tests.conftest import make_event, make_registration

    [event] = _events_then_downgrade("0006", make_event())
    with newer_columns():
        make_registration(event)
    db.session.remove()
    upgrade()
    assert db.session.scalar(sa.text("SELECT count(*) FROM registrations")) == 1
    db.session.remove()
    downgrade(revision="0006")
    try:
        assert db.session.scalar(sa.text("SELECT count(*) FROM registrations")) == 1
    finally:
        db.session.remove()
        upgrade()


def test_unsubscribing_is_a_column_that_comes_and_goes_with_its_revision(app):
    from tests.conftest import NOW, make_event, make_registration

    registration_id = make_registration(make_event(), unsubscribed_at=NOW).id
    db.session.commit()
    columns = lambda: {c["name"] for c in sa.inspect(db.engine).get_columns("registrations")}  # noqa: E731
    assert "unsubscribed_at" in columns()
    db.session.remove()
    downgrade(revision="0007")
    try:
        assert "unsubscribed_at" not in columns()
        assert db.session.scalar(sa.text("SELECT count(*) FROM registrations")) == 1
    finally:
        db.session.remove()
        upgrade()
    assert "unsubscribed_at" in columns()
    assert db.session.scalar(sa.text(
        "SELECT unsubscribed_at FROM registrations WHERE id = :id"), {"id": registration_id}
    ) is None  # who unsubscribed went with the downgrade


def test_replies_and_bounces_come_and_go_with_their_revision(app):
    from tests.conftest import NOW, make_event, make_registration

    registration_id = make_registration(make_event(), rsvp="accepted", rsvp_at=NOW).id
    db.session.commit()
    inspector = lambda: sa.inspect(db.engine)  # noqa: E731
    db.session.remove()
    downgrade(revision="0008")
    try:
        assert "handled_mail" not in inspector().get_table_names()
        assert "rsvp" not in {c["name"] for c in inspector().get_columns("registrations")}
        assert "undeliverable_at" not in {c["name"] for c in inspector().get_columns("people")}
        assert db.session.scalar(sa.text("SELECT count(*) FROM registrations")) == 1
    finally:
        db.session.remove()
        upgrade()
    assert db.session.scalar(sa.text("SELECT rsvp FROM registrations WHERE id = :id"),
                             {"id": registration_id}) is None
    # The database itself refuses an answer the enum doesn't have.
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text("UPDATE registrations SET rsvp = 'maybe'"))
    db.session.rollback()


def test_who_added_a_registration_comes_and_goes_with_its_revision_and_outlives_no_account(app):
    from organisers.models import Organiser
    from tests.conftest import make_event, make_organiser, make_registration

    organiser_id = make_organiser().id
    registration_id = make_registration(make_event(), added_by_organiser_id=organiser_id).id
    db.session.commit()
    columns = lambda: {c["name"] for c in sa.inspect(db.engine).get_columns("registrations")}  # noqa: E731
    db.session.remove()
    downgrade(revision="0009")
    try:
        assert "added_by_organiser_id" not in columns()
        assert db.session.scalar(sa.text("SELECT count(*) FROM registrations")) == 1
    finally:
        db.session.remove()
        upgrade()
    assert db.session.scalar(sa.text(
        "SELECT added_by_organiser_id FROM registrations WHERE id = :id"),
        {"id": registration_id}) is None  # who added whom went with the downgrade
    db.session.execute(sa.text("UPDATE registrations SET added_by_organiser_id = :o"),
                       {"o": organiser_id})
    db.session.commit()
    # Deleting the account forgets who added the person; the registration stays.
    db.session.execute(sa.delete(Organiser).where(Organiser.id == organiser_id))
    db.session.commit()
    assert db.session.execute(sa.text(
        "SELECT id, added_by_organiser_id FROM registrations")).all() == [(registration_id, None)]
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text("UPDATE registrations SET added_by_organiser_id = 999"))
        db.session.flush()
    db.session.rollback()


def test_announcements_come_and_go_with_their_revision(app):
    from notifications import announcements
    from notifications.models import Audience
    from tests.conftest import NOW, make_event, make_registration

    event = make_event()
    make_registration(event)
    announcements.queue(event, announcements.Draft(Audience.SEATS, "Slides", "Here.", key="k"),
                        NOW)
    db.session.commit()
    inspector = lambda: sa.inspect(db.engine)  # noqa: E731
    def insert(kind, message_id):
        db.session.execute(sa.text(
            "INSERT INTO messages (registration_id, event_id, kind, status, message_id, "
            "recipient, created_at, due_at, expires_at, attempts) SELECT id, event_id, :kind, "
            "'pending', :message_id, email, registered_at, registered_at, registered_at, 0 "
            "FROM registrations"), {"kind": kind, "message_id": message_id})

    db.session.remove()
    downgrade(revision="0010")
    try:
        assert "announcements" not in inspector().get_table_names()
        # Its emails went with it, and the old CHECK constraint refuses the kind again.
        assert db.session.scalar(sa.text("SELECT count(*) FROM messages")) == 0
        assert db.session.scalar(sa.text("SELECT count(*) FROM registrations")) == 1
        insert("reminder", "<1@example.org>")
        with pytest.raises(sa.exc.IntegrityError):
            insert("announcement", "<2@example.org>")
        db.session.rollback()
    finally:
        db.session.remove()
        upgrade()
    assert "announcements" in inspector().get_table_names()
    insert("announcement", "<3@example.org>")
    db.session.commit()
    assert db.session.scalar(sa.text(
        "SELECT count(*) FROM messages WHERE kind = 'announcement'")) == 1


def test_a_pending_reminder_written_before_the_upgrade_is_not_duplicated(app):
    from notifications.models import Message
    from notifications.reminders import plan_due_reminders
    from tests.conftest import make_event, make_registration

    event = make_event()
    registration = make_registration(event)
    db.session.commit()
    start = event.starts_at
    week_due, ids = start - timedelta(days=7), (registration.id, event.id)
    db.session.remove()
    downgrade(revision="0011")
    try:
        assert "slot" not in {c["name"] for c in sa.inspect(db.engine).get_columns("messages")}
        # As the older code wrote them: the week's reminder superseded by a title change and
        # written again for the same time, and the day's reminder of a time since moved.
        old = sa.text(
            "INSERT INTO messages (registration_id, event_id, kind, status, message_id, "
            "recipient, created_at, due_at, expires_at, attempts, detail) VALUES (:r, :e, "
            "'reminder', :status, :mid, 'a@example.org', :due, :due, :due, 0, :detail)"
        ).bindparams(sa.bindparam("due", type_=sa.DateTime()))
        for status, due, offset in (("skipped", week_due, "7d"), ("pending", week_due, "7d"),
                                    ("skipped", start - timedelta(days=2), "1d")):
            db.session.execute(old, {
                "r": ids[0], "e": ids[1], "status": status, "mid": f"<{status}{offset}@x>",
                "due": due.replace(tzinfo=None),
                "detail": f'{{"offset": "{offset}", "is_last": false}}'})
        db.session.commit()
    finally:
        db.session.remove()
        upgrade()
    slots = db.session.execute(sa.select(Message.status, Message.slot).order_by(Message.id)).all()
    moved = (start - timedelta(days=1)).isoformat()
    assert slots == [("skipped", None), ("pending", f"604800s@{start.isoformat()}"),
                     ("skipped", f"86400s@{moved}")]
    assert plan_due_reminders(week_due + timedelta(minutes=1)) == 0
    # No reminder due before the event's last change is planned (the older code planned none).
    assert db.session.scalar(sa.text("SELECT count(*) FROM events "
                                     "WHERE time_changed_at = updated_at")) == 1
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 3
