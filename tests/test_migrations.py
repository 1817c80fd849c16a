"""The migrations build exactly the schema the models describe, and undo cleanly, on both
databases."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from extensions import db


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


def test_upgrading_rewrites_stored_international_addresses_to_their_wire_form(app):
    from tests.conftest import make_event, make_registration

    downgrade(revision="0003")
    event = make_event()
    # As rows were written before: the Unicode domain, its case-folded key (faß → fass).
    old = make_registration(event, email="Anna@faß.de", email_key="anna@fass.de")
    plain = make_registration(event, email="ben@example.org", email_key="ben@example.org")
    db.session.commit()
    ids = old.id, plain.id
    db.session.remove()
    upgrade()
    rows = dict(db.session.execute(sa.text(
        "SELECT id, email || ' ' || email_key FROM registrations ORDER BY id")).all())
    assert rows == {ids[0]: "Anna@xn--fa-hia.de anna@xn--fa-hia.de",
                    ids[1]: "ben@example.org ben@example.org"}
