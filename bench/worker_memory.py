"""The worker's resident memory while it sends many messages, on SQLite.

A `flask worker` process (the real one, with its scheduler, at the default interval) sends
--messages due confirmations with invites to bench/dispatch.py's aiosmtpd sink; its VmRSS is
read from /proc/<pid>/status every half second beside the sink's count. The issue's figure is
after 100,000 messages; a smaller run (the default: 10,000, about as many minutes as the
machine allows) extrapolates the growth of its second half linearly to 100,000, and says so.
The floor is the same Python interpreter's RSS right after `import flask`. Aim: < 150 MB.

    .venv/bin/python bench/worker_memory.py [--messages 10000]
"""

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.dispatch import NOW, prepare, settings_for  # noqa: E402
from bench.support.sink import Sink  # noqa: E402

AIM_MB = 150.0
TARGET = 100_000
SAMPLE_S = 0.5


def _rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def make_due_now(config):
    """bench/dispatch.py plans for a fixed instant; a running worker follows the clock: move
    the sessions and the messages' windows so that every message is due now and none expired."""
    import sqlalchemy as sa

    from app import create_app
    from extensions import db
    from notifications.models import Message
    from registration.models import Event

    shift = datetime.now(UTC) - NOW
    app = create_app(config)
    with app.app_context():
        # One event at a time: date arithmetic in SQL differs between SQLite and PostgreSQL.
        for event in db.session.scalars(sa.select(Event)):
            event.starts_at += shift
            event.ends_at += shift
            db.session.execute(sa.update(Message).where(Message.event_id == event.id).values(
                due_at=datetime.now(UTC) - timedelta(minutes=1), expires_at=event.ends_at))
        db.session.commit()
        db.engine.dispose()


def floor_rss_kb():
    """RSS of a Python process that has only imported Flask."""
    code = ("import flask, pathlib; print(next(l.split()[1] for l in pathlib.Path("
            "'/proc/self/status').read_text().splitlines() if l.startswith('VmRSS:')))")
    return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                              text=True).stdout)


def watch(config, sink, count, timeout):
    """Run `flask worker` until the sink has `count` messages; [(seconds, delivered, rss kB)]."""
    env = {**os.environ, **config, "FLASK_APP": "app"}
    sink.ask("reset")
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "flask", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples = []
    try:
        while time.monotonic() - started < timeout and worker.poll() is None:
            delivered = sum(sink.ask("counts").values())
            samples.append((time.monotonic() - started, delivered, _rss_kb(worker.pid)))
            if delivered >= count:
                break
            time.sleep(SAMPLE_S)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            stderr = worker.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:
            worker.kill()
            stderr = worker.communicate()[1]
    return samples, worker.returncode, stderr.decode(errors="replace")


def main(argv=None):
    """Prepare, watch the worker, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before giving up")
    options = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-worker-memory-"))
    sink = Sink(multiprocessing.get_context("spawn")).start()
    try:
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        prepare(url, workdir, sink.port, options.messages)
        config = settings_for(url, workdir, sink.port)
        del config["DISPATCH_MARK_BATCH"]  # the worker's default
        make_due_now(config)
        samples, returncode, stderr = watch(config, sink, options.messages, options.timeout)
    finally:
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    floor_kb = floor_rss_kb()
    seconds, delivered, end_kb = samples[-1]
    start_kb = next((rss for _, sent, rss in samples if sent), samples[0][2])
    half = next(((sent, rss) for _, sent, rss in samples if sent >= delivered / 2), (0, start_kb))
    slope_kb = (end_kb - half[1]) / (delivered - half[0]) if delivered > half[0] else 0.0
    at_target_mb = (end_kb + slope_kb * max(0, TARGET - delivered)) / 1024
    print(f"flask worker on SQLite, {delivered:,} of {options.messages:,} confirmations with "
          f"invites delivered in {seconds:.0f} s ({delivered / seconds:,.0f}/s, default "
          f"interval); {os.cpu_count()} CPUs shared with everything else on the machine.")
    print(f"  VmRSS at the first message {start_kb / 1024:.1f} MB, at {delivered:,} messages "
          f"{end_kb / 1024:.1f} MB, peak {max(s[2] for s in samples) / 1024:.1f} MB; "
          f"floor (python + import flask) {floor_kb / 1024:.1f} MB; ours/floor "
          f"{end_kb / floor_kb:.1f}×")
    verb = "measured" if delivered >= TARGET else "extrapolated linearly from the second half"
    print(f"  growth {slope_kb * 10_000 / 1024:.2f} MB per 10,000 messages; at {TARGET:,}: "
          f"{at_target_mb:.1f} MB ({verb})   aim < {AIM_MB:g} MB: "
          f"{'met' if at_target_mb < AIM_MB else 'missed'}")
    if delivered < options.messages or returncode not in (0, None):
        print(f"  the worker stopped early or failed (exit {returncode}): {stderr[-300:]}")
    print("Aims are reported, never enforced: a missed aim does not fail the build.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
