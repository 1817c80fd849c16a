"""The Flask extensions, created unbound so every package can import them without circles."""

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import sqlalchemy as sa
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
limiter = Limiter(get_remote_address)


def engine_options(config) -> dict:
    """SQLALCHEMY_ENGINE_OPTIONS for the app's settings."""
    # An error's text (logged with its traceback) never carries the values bound to the
    # statement: names and addresses stay out of the logs.
    return {"hide_parameters": True}


def describe_database_error(error: sa.exc.DBAPIError) -> str:
    """A database error for the log, without its message: PostgreSQL's DETAIL quotes the
    values of a violated key (an address, a name), which must not reach the log."""
    driver_error = error.orig
    parts = [type(driver_error).__name__]
    code = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "sqlite_errorname",
                                                              None)
    if code:
        parts.append(code)
    diagnostics = getattr(driver_error, "diag", None)
    if diagnostics is not None and diagnostics.constraint_name:
        parts.append(f"constraint {diagnostics.constraint_name}")
    return f"{type(error).__name__} ({', '.join(parts)})"


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record):
    """WAL, a busy timeout and foreign keys on every SQLite connection."""
    import sqlite3

    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # We issue BEGIN ourselves (below): Python's implicit DEFERRED transactions let two readers
    # both try to upgrade to writers, and one of them gets "database is locked" at once.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


_read_only = ContextVar("read_only_transactions", default=False)


@contextmanager
def read_only():
    """Transactions begun inside this block only read: on SQLite they take no write lock, so a
    long export doesn't hold up sign-ups. (Never write in one: an upgrade can fail at once.)"""
    token = _read_only.set(True)
    try:
        yield
    finally:
        _read_only.reset(token)


@sa.event.listens_for(sa.engine.Engine, "begin")
def _sqlite_begin(conn):
    """Take SQLite's write lock at the start of each transaction, waiting for it if need be."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN" if _read_only.get() else "BEGIN IMMEDIATE")
