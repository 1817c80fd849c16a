"""The database connection: what its errors may log, how long anything may wait for it, and
which transactions take SQLite's write lock."""

import logging
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests
import sqlalchemy as sa

from extensions import ReadTransactionWrite, db, read_only, writes_on_get
from organisers.models import AuditEntry, Organiser
from registration.models import Registration
from tests.conftest import NOW, csrf_token, form_data, make_event
from tests.servers import GunicornServer

STATIC_PAGE = "/static/css/site.css"

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


# --- SQLite: only transactions that write take the write lock ---------------------------------

@pytest.fixture
def sqlite_app(app_with, database_url):
    """The app on SQLite, waiting at most a second for the write lock."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's database-wide write lock; PostgreSQL locks rows")
    with app_with(DATABASE_LOCK_TIMEOUT_SECONDS="1") as app:
        yield app


@contextmanager
def write_lock_held_elsewhere(app):
    """Another connection (another worker, an import) holds SQLite's write lock meanwhile."""
    db.session.commit()
    other = sqlite3.connect(db.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.rollback()
        other.close()


def test_pages_that_only_read_answer_while_another_connection_holds_the_write_lock(sqlite_app):
    client = sqlite_app.test_client()
    slug = make_event().slug
    with write_lock_held_elsewhere(sqlite_app):
        for path in ("/healthz", "/", f"/events/{slug}", "/programme.ics"):
            started = time.monotonic()
            response = client.get(path)
            # At once: not after the busy timeout (a second here, ten by default).
            assert (response.status_code, path) == (200, path)
            assert time.monotonic() - started < 0.5, path


def test_a_sign_up_while_another_connection_holds_the_write_lock_fails_cleanly(sqlite_app):
    client = sqlite_app.test_client()
    sqlite_app.testing = False  # as in production: an error page, not an exception
    slug = make_event().slug
    token = csrf_token(client, slug)
    with write_lock_held_elsewhere(sqlite_app):
        response = client.post(f"/events/{slug}/register", data=form_data(csrf_token=token))
    assert response.status_code == 503 and "try again" in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    # …and once the lock is free, the same sign-up goes through.
    response = client.post(f"/events/{slug}/register", data=form_data(csrf_token=token))
    assert response.status_code == 303


def _audit_page(app, endpoint, marked):
    def view():
        db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))  # reads first
        db.session.add(AuditEntry(at=NOW, actor="test", action="looked"))
        db.session.commit()
        return "written"

    view.__name__ = endpoint
    app.get(f"/{endpoint}")(writes_on_get(view) if marked else view)


def test_a_get_that_writes_without_saying_so_is_refused_every_time(sqlite_app):
    _audit_page(sqlite_app, "sneaky", marked=False)
    with pytest.raises(ReadTransactionWrite):
        sqlite_app.test_client().get("/sneaky")


def test_a_get_marked_as_writing_takes_the_write_lock_before_its_first_read(sqlite_app):
    _audit_page(sqlite_app, "audited", marked=True)
    client = sqlite_app.test_client()
    sqlite_app.testing = False
    with write_lock_held_elsewhere(sqlite_app):
        # It waits for the lock at BEGIN (and gives up cleanly), never reads then fails.
        assert client.get("/audited").status_code == 503
    assert client.get("/audited").text == "written"


# --- A database that accepts connections but never answers -------------------------------------

class SilentDatabase:
    """A TCP listener that accepts every connection and never says a word."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._accepted = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed: we are done
                return
            self._accepted.append(connection)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._listener.close()
        self._thread.join(5)
        for connection in self._accepted:
            connection.close()


def test_a_silent_database_makes_healthz_503_within_5_s_and_other_pages_keep_answering(tmp_path):
    with SilentDatabase() as database:
        server = GunicornServer("app:create_app()", workers=2, worker_class="gthread",
                                extra_args=["--threads", "4"])
        try:
            server.start({
                "DATABASE_URL": f"postgresql://forum@127.0.0.1:{database.port}/forum",
                "BASE_URL": server.url, "SECRET_KEY": "test-secret-key", "SCHEDULER": "off",
                "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
            }, ready_path=STATIC_PAGE)
            with ThreadPoolExecutor(max_workers=4) as pool:
                # Pages that need the database, all waiting on it at once.
                hung = [pool.submit(requests.get, server.url + "/", timeout=30) for _ in range(3)]
                started = time.monotonic()
                health = requests.get(server.url + "/healthz", timeout=10)
                assert health.status_code == 503
                assert time.monotonic() - started < 5
                static = requests.get(server.url + STATIC_PAGE, timeout=5)
                assert static.status_code == 200
                # The pages that waited end with a page saying to try again, not a hang.
                for page in hung:
                    assert page.result().status_code == 503
                    assert "try again" in page.result().text
        finally:
            server.stop()
        assert "Traceback" not in server.log_text()  # one line per failed request


def test_postgresql_sessions_carry_the_time_outs_and_an_export_is_not_cut_off(app_with,
                                                                              database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("server-side time-outs are PostgreSQL's")
    with app_with(DATABASE_STATEMENT_TIMEOUT_SECONDS="7", DATABASE_LOCK_TIMEOUT_SECONDS="3"):
        show = lambda name: db.session.execute(sa.text(f"SHOW {name}")).scalar()  # noqa: E731
        assert (show("statement_timeout"), show("lock_timeout")) == ("7s", "3s")
        assert show("idle_in_transaction_session_timeout") == "1min"
        db.session.commit()
        with read_only():  # an export streaming to a slow client
            assert show("idle_in_transaction_session_timeout") == "0"
        db.session.commit()
        assert show("idle_in_transaction_session_timeout") == "1min"


class FreezingProxy:
    """A TCP proxy to PostgreSQL that can go silent mid-conversation: the connections stay
    open and the server's kernel still takes our bytes, but no answer ever comes back."""

    def __init__(self, port):
        self._upstream_port = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._frozen = threading.Event()
        self._sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source, target):
        try:
            while data := source.recv(65536):
                if self._frozen.is_set():
                    return  # stop reading: what comes stays unanswered
                target.sendall(data)
        except OSError:
            return

    def freeze(self):
        self._frozen.set()

    def close(self):
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def test_healthz_answers_503_in_time_when_the_database_goes_silent_mid_conversation(
    app_with, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("a network database")
    url = sa.engine.make_url(database_url)
    proxy = FreezingProxy(url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    # Requests in a thread, so that a hang fails the test instead of hanging it.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        with app_with(DATABASE_URL=proxied) as app:
            client = app.test_client()
            assert client.get("/healthz").status_code == 200  # a pooled connection, in use
            proxy.freeze()
            started = time.monotonic()
            health = pool.submit(client.get, "/healthz")
            assert health.result(timeout=10).status_code == 503
            assert time.monotonic() - started < 5
    finally:
        proxy.close()  # whatever still waits on the database ends with its connection
        pool.shutdown(wait=True)
