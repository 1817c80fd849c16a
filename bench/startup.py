"""Start-up of a `flask dispatch` process: its wall time with nothing to send against a bare
`python -c pass` and a process that only imports Flask, and its ten heaviest imports.

A migrated SQLite database with nothing due, so the process does nothing but start, look and
exit. The imports come from `python -X importtime` (cumulative µs: a package's own time and its
imports'). bench/dispatch.py shows the same start-up from the other side: when a whole
`flask dispatch` process delivers its first message.

    .venv/bin/python bench/startup.py [--repeat 5]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.support.databases import quiet  # noqa: E402

TOP = 10


def _env(workdir):
    return {**os.environ, "FLASK_APP": "app",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "SECRET_KEY": "bench-secret-key-" + uuid.uuid4().hex, "SCHEDULER": "off",
            "MAIL_BACKEND": "file", "MAIL_OUTBOX_DIR": str(workdir / "outbox")}


def _migrate(env):
    import flask_migrate

    from app import create_app

    keys = ("DATABASE_URL", "SECRET_KEY", "SCHEDULER", "MAIL_BACKEND", "MAIL_OUTBOX_DIR")
    app = create_app({key: env[key] for key in keys})
    with app.app_context():
        quiet(flask_migrate.upgrade)


def _wall(command, env, repeat):
    """Median wall seconds of `repeat` runs of command (each must exit 0)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def heaviest_imports(command, env):
    """(cumulative µs, depth, module) of every import of `command` under -X importtime."""
    stderr = subprocess.run([sys.executable, "-X", "importtime", *command], cwd=ROOT, env=env,
                            check=True, capture_output=True, text=True).stderr
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        # Nesting shows as two spaces per level before the name.
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((int(cumulative), depth, name.strip()))
    return sorted(rows, reverse=True)


def main(argv=None):
    """Measure and print the start-up figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each process (median)")
    options = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        env = _env(workdir)
        _migrate(env)
        dispatch = ["-m", "flask", "dispatch"]
        bare, flask_only, ours_name = ("python -c pass", "python -c 'import flask'",
                                       "flask dispatch, nothing due")
        runs = [(bare, [sys.executable, "-c", "pass"]),
                (flask_only, [sys.executable, "-c", "import flask"]),
                (ours_name, [sys.executable, *dispatch])]
        print(f"Wall time of whole processes, median of {options.repeat} ({os.cpu_count()} CPUs "
              "shared with everything else on the machine):")
        medians = {}
        for name, command in runs:
            medians[name], times = _wall(command, env, options.repeat)
            print(f"  {name:<30}{medians[name]:>7.3f} s   (runs: "
                  f"{', '.join(f'{t:.3f}' for t in times)})")
        ours = medians[ours_name]
        print(f"  flask dispatch ÷ python -c pass: {ours / medians[bare]:.1f}×; "
              f"÷ importing Flask alone: {ours / medians[flask_only]:.1f}×")
        rows = heaviest_imports(dispatch, env)
        print(f"\nTop {TOP} cumulative imports of `flask dispatch` (python -X importtime, "
              "one run; nested ones are counted inside their parents too):")
        print(f"  {'cumulative':>11}  depth  module")
        for cumulative, depth, name in rows[:TOP]:
            print(f"  {cumulative / 1000:>8.1f} ms  {depth:>5}  {name}")
        top_level = [row for row in rows if row[1] == 0]
        print(f"\nTop {TOP} top-level imports (depth 0; together "
              f"{sum(r[0] for r in top_level) / 1000:.0f} ms of imports in this run):")
        for cumulative, _, name in top_level[:TOP]:
            print(f"  {cumulative / 1000:>8.1f} ms  {name}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("No aim of its own: the issue's lever is importing what a command needs when it needs "
          "it; bench/dispatch.py shows the whole-process ratio.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
