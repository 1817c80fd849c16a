"""The Flask extensions, created unbound so every package can import them without circles,
and the database connection: its options, its clock, and which transactions take SQLite's write
lock."""

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, registry


class UTCDateTime(sa.TypeDecorator):
    """An aware UTC datetime, stored naive in UTC on every database."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class database_now(sa.sql.functions.FunctionElement):  # noqa: N801  (reads as a SQL function)
    """The database server's current UTC time, plus `seconds`: one clock for every host that
    shares the database, whatever each host's own clock says."""

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, seconds: int = 0):
        super().__init__(sa.literal(int(seconds), sa.Integer))


@compiles(database_now, "postgresql")
def _postgresql_now(element, compiler, **kw):
    # clock_timestamp(), not now(): the time of the statement, not of the transaction's start.
    seconds = compiler.process(element.clauses.clauses[0], **kw)
    return f"(clock_timestamp() AT TIME ZONE 'UTC' + {seconds} * interval '1 second')"


@compiles(database_now, "sqlite")
def _sqlite_now(element, compiler, **kw):
    # Written as UTCDateTime stores values on SQLite ('YYYY-MM-DD HH:MM:SS.ffffff', as text),
    # so the comparisons with stored times are comparisons of equal-length strings.
    seconds = compiler.process(element.clauses.clauses[0], **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', {seconds} || ' seconds')"


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(
            naming_convention={
                "ix": "ix_%(column_0_label)s",
                "uq": "uq_%(table_name)s_%(column_0_name)s",
                "ck": "ck_%(table_name)s_%(constraint_name)s",
                "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
                "pk": "pk_%(table_name)s",
            }
        ),
        type_annotation_map={datetime: UTCDateTime},
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(get_remote_address)


def engine_options(config) -> dict:
    """SQLALCHEMY_ENGINE_OPTIONS for the app's settings."""
    options = {
        # An error's text (logged with its traceback) never carries the values bound to the
        # statement: names and addresses stay out of the logs.
        "hide_parameters": True,
    }
    url = sa.engine.make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        # How long a writer waits for another's write lock before answering "busy" (503).
        options["connect_args"] = {"timeout": config["DATABASE_LOCK_TIMEOUT_SECONDS"]}
        return options
    # A database that accepts connections but never answers must not hold a request (or a
    # gunicorn thread) for long: every wait has an end, and ends in a 503.
    options["pool_timeout"] = config["DATABASE_POOL_TIMEOUT_SECONDS"]
    keepalive = config["DATABASE_KEEPALIVE_SECONDS"]
    server_limits = {
        "statement_timeout": config["DATABASE_STATEMENT_TIMEOUT_SECONDS"],
        "lock_timeout": config["DATABASE_LOCK_TIMEOUT_SECONDS"],
        "idle_in_transaction_session_timeout":
            config["DATABASE_IDLE_TRANSACTION_TIMEOUT_SECONDS"],
    }
    options["connect_args"] = {
        "connect_timeout": config["DATABASE_CONNECT_TIMEOUT_SECONDS"],
        # A server or network gone silent is noticed after keepalive + 3 probes 10 s apart,
        # and data it never acknowledges is given up on after as long.
        "keepalives": 1,
        "keepalives_idle": keepalive,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": (keepalive + 30) * 1000,
        # 0 sends nothing, leaving the server's (or the role's) own setting.
        "options": " ".join(f"-c {name}={seconds * 1000}"
                            for name, seconds in server_limits.items() if seconds),
    }
    return options


def describe_database_error(error: sa.exc.DBAPIError) -> str:
    """A database error for the log, without its message: PostgreSQL's DETAIL quotes the
    values of a violated key (an address, a name), which must not reach the log."""
    driver_error = error.orig
    parts = [type(driver_error).__name__] if type(driver_error).__name__ != type(
        error).__name__ else []
    code = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "sqlite_errorname",
                                                              None)
    if code:
        parts.append(code)
    diagnostics = getattr(driver_error, "diag", None)
    if diagnostics is not None and diagnostics.constraint_name:
        parts.append(f"constraint {diagnostics.constraint_name}")
    if isinstance(error, sa.exc.OperationalError):
        # A time-out, a refused connection, a lock: the first line names no row, only the
        # server ("connection refused", "canceling statement due to lock timeout").
        parts.append(str(driver_error).strip().split("\n", 1)[0][:200])
    return f"{type(error).__name__} ({', '.join(parts)})" if parts else type(error).__name__


# /healthz answers within this, whatever the database does.
HEALTH_CHECK_SECONDS = 4
# Probes left waiting on a database that went silent mid-conversation (no client-side time-out
# can end a query the server never answers): past this many, /healthz says 503 without asking.
_health_probes = threading.BoundedSemaphore(4)


def database_answers(timeout: float = HEALTH_CHECK_SECONDS) -> bool:
    """True if the database answers SELECT 1 within `timeout` seconds.

    The question is asked in a thread of its own: a connection the server stopped answering
    waits forever for its reply, and only the thread asking waits with it, not the request."""
    if not _health_probes.acquire(blocking=False):
        return False
    engine = db.engine
    answered = threading.Event()

    def probe():
        try:
            # Its own thread is outside the request: say that it only reads (no SQLite lock).
            with read_only(), engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            answered.set()
        except sa.exc.SQLAlchemyError:
            pass
        finally:
            _health_probes.release()

    threading.Thread(target=probe, name="health-probe", daemon=True).start()
    return answered.wait(timeout)


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record):
    """WAL and foreign keys on every SQLite connection (its busy timeout is a connect
    argument: see engine_options)."""
    import sqlite3

    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # We issue BEGIN ourselves (below): Python's implicit DEFERRED transactions let two readers
    # both try to upgrade to writers, and one of them gets "database is locked" at once.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


# Transactions on SQLite: only one connection at a time may write, and WAL lets readers run
# beside it. A transaction that will write takes the write lock when it begins (BEGIN
# IMMEDIATE, waiting up to the busy timeout): one begun as a reader (BEGIN) that writes later
# can fail at once with "database is locked", whatever the timeout, if another connection wrote
# meanwhile. So the kind is decided at BEGIN, here and nowhere else:
# - in a request, by its method: GET, HEAD and OPTIONS read (BEGIN); everything else writes;
# - a view whose GET writes says so once, with @writes_on_get (an export's audit entry);
# - outside requests (CLI, worker, scheduler) every transaction writes;
# - inside read_only() a transaction only reads, whatever the above says (a long export).
# A write in a reading transaction is refused at once (ReadTransactionWrite), so a GET that
# writes without saying so fails every time in tests instead of now and then under load.
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_read_only = ContextVar("read_only_transactions", default=False)
_IN_READ_TRANSACTION = "in_read_transaction"  # key in the connection's info


class ReadTransactionWrite(RuntimeError):
    """A statement tried to write in a transaction begun as a reader (a programming error)."""


@contextmanager
def read_only():
    """Transactions begun inside this block only read: on SQLite they take no write lock, so a
    long export doesn't hold up sign-ups. (A write in one is refused.)"""
    token = _read_only.set(True)
    try:
        yield
    finally:
        _read_only.reset(token)


def writes_on_get(view):
    """Mark a view that writes although it answers GET: its transactions take SQLite's write
    lock when they begin, as a POST's do."""
    view.writes_on_get = True
    return view


def _transaction_writes() -> bool:
    if _read_only.get():
        return False
    if not has_request_context():
        return True
    if request.method not in READING_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return getattr(view, "writes_on_get", False)


@sa.event.listens_for(sa.engine.Engine, "begin")
def _begin(conn):
    """Begin each SQLite transaction as a reader or as a writer (see above)."""
    if conn.dialect.name == "sqlite":
        writes = _transaction_writes()
        conn.info[_IN_READ_TRANSACTION] = not writes
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
    elif _read_only.get():
        # A read-only transaction (an export) stays open while its rows stream to a client
        # who may be slow: it holds no row lock, so the idle time-out is lifted for it alone.
        # (Each statement still has DATABASE_STATEMENT_TIMEOUT_SECONDS.)
        conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _refuse_writes_in_read_transactions(conn, cursor, statement, parameters, context,
                                        executemany):
    if (conn.info.get(_IN_READ_TRANSACTION) and context is not None and conn.in_transaction()
            and (context.isinsert or context.isupdate or context.isdelete)):
        raise ReadTransactionWrite(
            "a write in a transaction begun as a reader (it could fail with 'database is "
            "locked'): mark the view @writes_on_get, or leave read_only() first")
