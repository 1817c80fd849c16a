"""The served API against its own OpenAPI document: schemathesis generates requests (valid and
invalid) for every operation and checks each answer (no 5xx, status, content type, headers and
body as documented), then follows the document's links (the events list → a session → its
sign-up) in a stateful run. Bounded, so that the module takes well under a minute."""

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from extensions import db
from tests.conftest import base_config, make_app, make_event
from tests.servers import GunicornServer

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def server(module_database_url, tmp_path_factory):
    """The app under gunicorn, on a database holding an open, a full and a cancelled session."""
    folder = tmp_path_factory.mktemp("schemathesis")
    app = make_app(base_config(module_database_url, folder))
    now = datetime.now(UTC)  # the server reads the real clock
    with app.app_context():
        for slug, fields in (("open-webinar", {}), ("full-workshop", {"capacity": 0}),
                             ("cancelled-training", {"status": "cancelled"})):
            make_event(slug=slug, starts_at=now + timedelta(days=30), created_at=now,
                       updated_at=now, **fields)
        db.session.remove()
        db.engine.dispose()
    server = GunicornServer("app:create_app()", workers=2, log_path=folder / "gunicorn.log")
    server.start({
        "DATABASE_URL": module_database_url,
        "SECRET_KEY": "schemathesis-secret-key",
        "BASE_URL": server.url,
        "SCHEDULER": "off",
        "RATELIMIT_ENABLED": "false",
        "MAIL_BACKEND": "file",
        "MAIL_OUTBOX_DIR": str(folder / "outbox"),
        "CORS_ORIGINS": "https://www.example.net",
    })
    yield server
    server.stop()


# A body the schema allows may still break a rule it can't express (an address that exists, a
# country code, an open session): those answers are the documented 410 and 422. And a session
# that has closed answers 410 before reading the body, as the form does, however wrong it is.
CONFIG = {"checks": {
    "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "404", "410", "422"]},
    "negative_data_rejection": {"expected-statuses": [
        "400", "403", "404", "405", "406", "409", "410", "413", "415", "422", "428", "429",
        "5xx"]},
}}


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/api/v1/openapi.json",
                                         config=schemathesis.Config.from_dict(CONFIG))


def operations(api_schema):
    return [result.ok() for result in api_schema.get_all_operations()]


# Not schemathesis's pytest integration (@schema.parametrize with from_fixture): with pytest 9
# it reads a node attribute pytest no longer has. Hypothesis runs each operation's strategy.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(api_schema, mode):
    for operation in operations(api_schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_as_documented(case):
            case.call_and_validate()

        try:
            answers_as_documented()
        except Unsatisfiable:
            # Nothing in this operation can be sent wrong (a path segment takes any text).
            assert mode == GenerationMode.NEGATIVE, operation.label
            print("no negative data for", operation.label)


def test_the_documented_links_hold_in_a_stateful_run(api_schema):
    machine = api_schema.as_state_machine()
    machine.run(settings=settings(max_examples=MAX_EXAMPLES, stateful_step_count=4,
                                  deadline=None, suppress_health_check=list(HealthCheck)))
