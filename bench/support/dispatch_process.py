"""Whole processes for bench/dispatch.py: a `flask dispatch` from start to exit against the
floor (bench/baseline/dispatch_floor.py), each with the moment its first message reached the
sink, so start-up counts and shows apart."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FLOOR_SCRIPT = ROOT / "bench" / "baseline" / "dispatch_floor.py"


@dataclass
class ProcessRun:
    """One process: wall seconds from start to exit, to the sink's first message, what arrived."""

    seconds: float
    first_s: float
    delivered: int
    distinct: int
    error: str = ""

    @property
    def rate(self):
        return self.delivered / self.seconds


def leave_due(config, count):
    """Keep the first `count` messages due and mark the rest sent: one process sends `count`.
    Run after bench/dispatch.py's reset(), which makes every message due."""
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.models import Message

    app = create_app(config)
    with app.app_context():
        kept = sa.select(Message.id).order_by(Message.id).limit(count)
        db.session.execute(sa.update(Message).where(Message.id.not_in(kept))
                           .values(status="sent"))
        db.session.commit()
        db.engine.dispose()


def _timed(command, sink, env=None):
    sink.ask("reset")
    started = time.time()
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.time() - started
    first_at = sink.ask("first")
    counts = sink.ask("counts")
    error = "" if completed.returncode == 0 else (
        f"exit {completed.returncode}: {(completed.stderr or completed.stdout)[-300:]}")
    return ProcessRun(seconds, (first_at - started) if first_at else float("nan"),
                      sum(counts.values()), len(counts), error)


def flask_dispatch(config, now, sink):
    """Time a whole `flask dispatch --now …` process with `config` as its environment."""
    env = {**os.environ, **config, "FLASK_APP": "app"}
    return _timed([sys.executable, "-m", "flask", "dispatch", "--now", now.isoformat()], sink,
                  env)


def floor(mail, count, sink, workdir):
    """Time a whole floor process sending `mail`'s bytes `count` times over one connection."""
    path = Path(workdir) / "floor.eml"
    path.write_bytes(mail.data)
    return _timed([sys.executable, str(FLOOR_SCRIPT), str(sink.port), mail.envelope_from,
                   mail.recipients[0], str(count), str(path)], sink)


def print_runs(rows, count, aim_ratio):
    """Per database, one line for each SMTP_CONNECTIONS run: ours, the floor, the ratio and the
    aim (reported, never enforced)."""
    print()
    print(f"Whole processes, {count:,} confirmations with invites each (wall time from start to "
          "exit; 'first': when the sink got the first message):")
    for database, ours, base in rows:
        for connections, run in ours.items():
            ratio = run.rate / base.rate
            print(f"  {database:<11} flask dispatch, SMTP_CONNECTIONS={connections:<2} "
                  f"{run.rate:>6,.0f} messages/s ({run.seconds:.2f} s, first {run.first_s:.2f} s)"
                  f"   floor {base.rate:>6,.0f} messages/s ({base.seconds:.2f} s, first "
                  f"{base.first_s:.2f} s)   ratio {ratio:.2f}  "
                  f"aim ≥ {aim_ratio}: {'met' if ratio >= aim_ratio else 'missed'}")
        for name, run in (*((f"flask dispatch ({n})", r) for n, r in ours.items()),
                          ("floor", base)):
            if run.error or run.delivered != count:
                print(f"    {name}: delivered {run.delivered} ({run.distinct} distinct) "
                      f"of {count}; {run.error}")
    print("  floor: bench/baseline/dispatch_floor.py, one of our messages built once, its bytes "
          "sent again and again over one smtplib connection to the same sink.")
