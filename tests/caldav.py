"""A real CalDAV server (Radicale) on a free loopback port, for tests that check what a calendar
client would store and find. No authentication: any user name logs in as itself."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


class ServerError(RuntimeError):
    """Radicale did not come up; the message carries the end of its log."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RadicaleServer:
    """One `python -m radicale` process with its own configuration and storage in `folder`.

    Radicale binds the port itself, so another process may take it between our probe and its
    start: start() then tries again on another port (a bounded number of times).
    """

    def __init__(self, folder: Path, user: str = "organiser"):
        self.folder = Path(folder)
        self.user = user
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.log_path = self.folder / "radicale.log"

    def session(self) -> requests.Session:
        """An HTTP session logged in as the server's user (auth type none takes any password)."""
        session = requests.Session()
        session.auth = (self.user, "unused")
        return session

    def _write_config(self, port: int) -> Path:
        config = self.folder / "config"
        config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{port}\n"
            "[auth]\n"
            "type = none\n"
            "[rights]\n"
            "type = owner_only\n"
            "[storage]\n"
            f"filesystem_folder = {self.folder / 'collections'}\n"
            "[web]\n"
            "type = none\n"
            "[logging]\n"
            "level = warning\n"
        )
        return config

    def start(self, timeout: float = 10.0, attempts: int = 3) -> "RadicaleServer":
        """Start Radicale; return once it answers OPTIONS / with 200."""
        for _ in range(attempts):
            port = _free_port()
            config = self._write_config(port)
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "radicale", "--config", str(config)],
                    cwd=self.folder,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready(timeout):
                return self
            # It exited (most likely the port was taken meanwhile): try another port.
        raise ServerError(f"Radicale did not start; its log ends:\n{self._log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.options(f"{self.url}/", timeout=1).status_code == 200:
                    return True
            except requests.ConnectionError:
                pass
            try:
                # Waits on the process, not for time to pass: returns at once if it died.
                self.process.wait(timeout=0.05)
                return False
            except subprocess.TimeoutExpired:
                continue
        self.stop()
        raise ServerError(f"Radicale did not answer in {timeout} s; its log ends:\n"
                          f"{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
