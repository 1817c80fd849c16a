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
