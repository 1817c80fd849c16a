"""The idle dispatch tick for bench/dispatch.py: with a million future messages in
PostgreSQL, the plans of the claim and housekeeping statements and the median time of a tick
that finds nothing due."""

import statistics
import time
from datetime import timedelta


def idle_tick(config, now, rows, ticks):
    """With `rows` future messages after `now` in the database of `config` (the app's settings):
    the plans of the claim and of housekeeping, and the median ms of an idle tick at `now`."""
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.claims import skip_expired
    from notifications.dispatcher import dispatch

    app = create_app(config)
    with app.app_context():
        # Nothing due but the future rows below.
        db.session.execute(sa.text("UPDATE messages SET status = 'sent' WHERE status = 'pending'"))
        # One registration carries them all: the tick reads messages only.
        registration_id, event_id = db.session.execute(
            sa.text("SELECT id, event_id FROM registrations LIMIT 1")).one()
        db.session.execute(sa.text(
            "INSERT INTO messages (registration_id, event_id, kind, status, message_id,"
            " recipient, created_at, due_at, expires_at, attempts)"
            " SELECT :registration_id, :event_id, 'reminder', 'pending',"
            " '<idle-' || g || '@example.org>', 'idle@example.org', :now,"
            " :due + g * interval '1 second', :due + g * interval '1 second' + interval '1 day',"
            " 0 FROM generate_series(1, :rows) AS g"),
            {"registration_id": registration_id, "event_id": event_id,
             "now": now.replace(tzinfo=None), "due": (now + timedelta(days=1)).replace(tzinfo=None),
             "rows": rows})
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE messages")
        total = db.session.scalar(sa.text("SELECT count(*) FROM messages"))

        statements = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        plans = {}
        sa.event.listen(db.engine, "before_cursor_execute", capture)
        for name, tick in (("claim (every tick)", dispatch), ("housekeeping", skip_expired)):
            statements.clear()
            tick(now)
            sql, params = next(s for s in statements if s[0].startswith("UPDATE messages"))
            with db.engine.connect() as c:
                plans[name] = [row[0] for row in c.exec_driver_sql("EXPLAIN " + sql, params)]
        sa.event.remove(db.engine, "before_cursor_execute", capture)

        timings = []
        for _ in range(ticks):
            started = time.perf_counter()
            summary = dispatch(now)
            timings.append((time.perf_counter() - started) * 1000)
            assert summary.claimed == 0
        db.engine.dispose()
    return total, plans, statistics.median(timings)
