"""Run a WSGI app under gunicorn on a free loopback port, for tests and benchmarks over HTTP."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gunicorn.config
import requests

ROOT = Path(__file__).resolve().parent.parent
# gunicorn >= 24 opens a control socket at one fixed path per user, which servers running side
# by side (tests, benchmark and baseline) would fight over; none of them needs it.
_NO_CONTROL_SOCKET = (
    ["--no-control-socket"]
    if any(setting.name == "control_socket_disable" for setting in gunicorn.config.KNOWN_SETTINGS)
    else []
)


class ServerError(RuntimeError):
    """gunicorn did not come up; the message carries the end of its log."""


class GunicornServer:
    """One gunicorn master and its workers, on a loopback port chosen when the object is made.

    The listening socket is bound here and handed to gunicorn as ``fd://N``, so ``url`` is known
    before start() (the app's BASE_URL needs it) and no other process can take the port meanwhile:

        server = GunicornServer("app:create_app()", workers=4)
        server.start({"BASE_URL": server.url, ...})  # returns once /healthz answers 200
        ...
        server.stop()  # in a finally or a fixture's teardown
    """

    def __init__(self, app_spec, *, workers=4, worker_class="sync", extra_args=(), cwd=ROOT,
                 log_path=None):
        self.app_spec = app_spec
        self.workers = workers
        self.worker_class = worker_class
        self.extra_args = list(extra_args)
        self.cwd = Path(cwd)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        # Clients may all connect before a worker accepts: a backlog as large as gunicorn's.
        self._listener.listen(2048)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        if log_path is None:
            self._log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log",
                                                    delete=False)
        else:
            self._log = open(log_path, "wb")  # closed by stop()

    def start(self, env, *, ready_path="/healthz", timeout=30.0):
        """Start gunicorn with these extra environment variables; return once ready_path is 200."""
        fd = self._listener.fileno()
        command = [
            sys.executable, "-m", "gunicorn",
            # Not the project's gunicorn.conf.py (read from the working folder by default): its
            # threads would turn these sync workers into threaded ones behind our back.
            "--config", os.devnull,
            "--bind", f"fd://{fd}",
            "--workers", str(self.workers),
            "--worker-class", self.worker_class,
            "--graceful-timeout", "5",
            "--log-level", "warning",
            "--error-logfile", "-",
            *_NO_CONTROL_SOCKET,
            *self.extra_args,
            self.app_spec,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env={**os.environ, **env},
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own process group, so stop() can reach every worker even if the master dies.
            start_new_session=True,
        )
        # gunicorn holds its own copy now; ours would keep the port open after stop().
        self._listener.close()
        try:
            self._wait_until_ready(ready_path, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, path, timeout):
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                # The socket listens already, so the request waits in its backlog until a worker
                # has booted: give it all the time left rather than retrying on a short time-out.
                response = requests.get(self.url + path, timeout=remaining)
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                last_error = type(exc).__name__
            # Waiting on the process paces the loop and notices at once if gunicorn gave up.
            try:
                code = self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise ServerError(f"gunicorn exited with {code} before {path} answered:\n"
                              f"{self.log_tail()}")
        raise ServerError(f"{path} did not answer 200 within {timeout:g} s ({last_error}):\n"
                          f"{self.log_tail()}")

    def log_text(self):
        """Everything gunicorn and the app wrote to stdout and stderr so far."""
        return Path(self._log.name).read_text(errors="replace")

    def log_tail(self, lines=40):
        """The last lines of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout=10.0):
        """Stop gunicorn and its workers, then kill whatever of its process group is left."""
        self._listener.close()
        if self.process is None:
            return
        if self.process.poll() is None:
            # SIGINT: workers exit at once instead of finishing in-flight requests (SIGTERM);
            # our callers stop only after every answer is in, and it saves a second per stop.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the whole group has already gone, as it should after a graceful stop
        self.process.wait()
        self._log.close()

    def remove_log(self):
        """Delete the log file (after stop())."""
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()
