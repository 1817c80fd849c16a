"""The benchmarks' databases: quiet migrations, and a PostgreSQL server to make them on."""

import contextlib
import io
import sys


def quiet(function, *args):
    """Call function with its stderr (Alembic's INFO lines) kept back unless it fails."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            return function(*args)
    except BaseException:
        sys.stderr.write(buffer.getvalue())
        raise


def postgres_admin(admin_url):
    """A psycopg autocommit connection to the server's maintenance database, or None."""
    import psycopg

    try:
        return psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["no reason given"])[0]
        print(f"PostgreSQL at {admin_url} is unreachable ({reason}); running SQLite only.")
        return None


def database_url(admin_url, name):
    """The URL of database `name` on the server of `admin_url`."""
    import sqlalchemy as sa

    url = sa.engine.make_url(admin_url).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)
