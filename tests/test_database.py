"""The database connection: what its errors may log, how long anything may wait for it, and
which transactions take SQLite's write lock."""

import logging

import pytest
import sqlalchemy as sa

from extensions import db
from organisers.models import Organiser
from tests.conftest import NOW

SECRET_ADDRESS = "hidden.person@example.org"


def test_a_database_error_carries_no_parameter_values(app):
    db.session.add(Organiser(email=SECRET_ADDRESS, password_hash="x", created_at=NOW))
    db.session.commit()
    db.session.add(Organiser(email=SECRET_ADDRESS, password_hash="y", created_at=NOW))
    with pytest.raises(sa.exc.IntegrityError) as error:
        db.session.commit()
    db.session.rollback()
    # What SQLAlchemy adds to the driver's message: the statement, and no values.
    added = str(error.value).split("[SQL:", 1)[1]
    assert SECRET_ADDRESS not in added and "hide_parameters" in added


def test_a_database_error_in_a_request_logs_no_personal_data(app, client, caplog):
    # PostgreSQL's own message quotes the duplicate key ("Key (email)=(…) already exists").
    db.session.add(Organiser(email=SECRET_ADDRESS, password_hash="x", created_at=NOW))
    db.session.commit()

    @app.post("/duplicate")
    def duplicate():
        db.session.add(Organiser(email=SECRET_ADDRESS, password_hash="y", created_at=NOW))
        db.session.commit()

    app.testing = False  # answer as in production instead of raising into the test
    app.config["WTF_CSRF_ENABLED"] = False
    with caplog.at_level(logging.ERROR):
        response = client.post("/duplicate")
    assert response.status_code == 500
    # …but which constraint it was, or SQLite's code for it, is there.
    assert "uq_organisers_email" in caplog.text or "SQLITE_CONSTRAINT_UNIQUE" in caplog.text
    assert SECRET_ADDRESS not in caplog.text and SECRET_ADDRESS not in response.text
