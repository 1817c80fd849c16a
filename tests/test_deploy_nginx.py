"""deploy/nginx.conf, as shipped, in front of gunicorn: it holds slow clients, limits bodies,
sends HSTS and hands the client's address to the app."""

import http.client
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter

from tests.conftest import CSRF_RE
from tests.servers import ROOT, GunicornServer

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
OPENSSL = shutil.which("openssl")
if not (NGINX and OPENSSL):
    pytest.skip("nginx is not installed: `apt-get install nginx-light openssl` runs these tests",
                allow_module_level=True)

SHIPPED = ROOT / "deploy" / "nginx.conf"
SLOW_CLIENTS = 60
# How long a normal request may take while the slow clients hang on: far more than it needs,
# far less than the slow clients would hold a worker without the proxy.
ANSWER_WITHIN = 5  # seconds
CLIENT_ADDRESS = "127.0.0.2"  # any 127/8 address is this host; nginx itself talks from 127.0.0.1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def render(upstream_port, http_port, https_port, cert, key) -> str:
    """The shipped file with this test's ports and certificate: each line it changes must be
    there exactly once, so the file tested is the file shipped."""
    text = SHIPPED.read_text()
    for shipped, ours in {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/etc/letsencrypt/live/forum.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/forum.example.org/privkey.pem": str(key),
    }.items():
        assert text.count(shipped) == 1, f"deploy/nginx.conf no longer has {shipped!r}"
        text = text.replace(shipped, ours)
    return text


def main_config(prefix: Path, site: Path) -> str:
    """An nginx.conf of our own around the site: every path under prefix, in the foreground."""
    # As root, nginx's workers would become `nobody`, who can't reach pytest's private folders.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}
daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
{temp}
    access_log off;
    include {site};
}}
"""


def nginx_command(prefix: Path, *args) -> list[str]:
    return [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
            "-e", str(prefix / "error.log"), *args]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=forum.example.org", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=DNS:forum.example.org,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def database(sqlite_template, tmp_path_factory):
    path = tmp_path_factory.mktemp("nginx-db") / "forum.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def gunicorn(database, tmp_path_factory):
    """The app under gunicorn with two sync workers: few enough that slow clients reaching it
    would hold them all."""
    folder = tmp_path_factory.mktemp("nginx-gunicorn")
    server = GunicornServer("app:create_app()", workers=2, log_path=folder / "gunicorn.log")
    server.start({
        "DATABASE_URL": database,
        "SECRET_KEY": "nginx-test-secret-key",
        "BASE_URL": "https://forum.example.org",
        "TRUSTED_PROXIES": "1",
        "SCHEDULER": "off",
        "RATELIMIT_ENABLED": "false",
        "MAIL_BACKEND": "file",
        "MAIL_OUTBOX_DIR": str(folder / "outbox"),
    })
    yield server
    server.stop()


class Nginx:
    def __init__(self, prefix, http_port, https_port, cert):
        self.prefix = prefix
        self.http_url = f"http://127.0.0.1:{http_port}"
        self.https_port = https_port
        self.url = f"https://127.0.0.1:{https_port}"
        self.cert = cert


@pytest.fixture(scope="module")
def nginx(gunicorn, tmp_path_factory):
    """nginx with the shipped site in front of gunicorn, once for the module."""
    prefix = tmp_path_factory.mktemp("nginx")
    cert, key = make_certificate(prefix)
    http_port, https_port = _free_port(), _free_port()
    site = prefix / "forum-signup.conf"
    site.write_text(render(gunicorn.port, http_port, https_port, cert, key))
    (prefix / "nginx.conf").write_text(main_config(prefix, site))
    process = subprocess.Popen(nginx_command(prefix), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Nginx(prefix, http_port, https_port, cert)
    try:
        _wait_until_listening(process, https_port)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


def _wait_until_listening(process, port, timeout=10.0):
    # A connection attempt that is refused comes back at once; the loop ends when nginx has
    # bound its port, or has exited (then its own words say why).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            try:
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    raise RuntimeError("nginx did not listen in time")


def test_nginx_accepts_the_shipped_config(nginx):
    result = subprocess.run(nginx_command(nginx.prefix, "-t"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_answers_over_https_with_hsts_and_plain_http_is_sent_there(nginx):
    response = requests.get(nginx.url + "/healthz", verify=nginx.cert, timeout=ANSWER_WITHIN)
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    plain = requests.get(nginx.http_url + "/healthz", allow_redirects=False,
                         timeout=ANSWER_WITHIN)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")


def _slow_clients(connect, count):
    """Open count connections that each send the first line and one header, then hang on."""
    clients = []
    try:
        for _ in range(count):
            client = connect()
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: forum.example.org\r\n")
            clients.append(client)
    except BaseException:
        for client in clients:
            client.close()
        raise
    return clients


def test_slow_clients_at_nginx_leave_the_site_answering(nginx):
    context = ssl.create_default_context(cafile=str(nginx.cert))

    def connect():
        raw = socket.create_connection(("127.0.0.1", nginx.https_port), timeout=ANSWER_WITHIN)
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

    clients = _slow_clients(connect, SLOW_CLIENTS)
    try:
        for _ in range(3):
            response = requests.get(nginx.url + "/healthz", verify=nginx.cert,
                                    timeout=ANSWER_WITHIN)
            assert response.status_code == 200
    finally:
        for client in clients:
            client.close()


def test_without_the_proxy_the_same_slow_clients_hold_every_worker(nginx, gunicorn):
    # Why the proxy is required: the same clients straight at gunicorn leave no worker free.
    def connect():
        return socket.create_connection(("127.0.0.1", gunicorn.port), timeout=ANSWER_WITHIN)

    clients = _slow_clients(connect, SLOW_CLIENTS)
    try:
        with pytest.raises(requests.Timeout):
            requests.get(gunicorn.url + "/healthz", timeout=2)
    finally:
        for client in clients:
            client.close()
    # Once they have gone, gunicorn answers again (and the next tests find it well).
    assert requests.get(gunicorn.url + "/healthz", timeout=30).status_code == 200


def _post_size(nginx, size, body=False):
    """POST a body of this size to the sign-in; the answer's status and text."""
    context = ssl.create_default_context(cafile=str(nginx.cert))
    connection = http.client.HTTPSConnection("127.0.0.1", nginx.https_port, context=context,
                                             timeout=ANSWER_WITHIN)
    try:
        connection.putrequest("POST", "/admin/login")
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(size))
        # Without the body, nginx must answer from Content-Length alone.
        connection.endheaders(b"x" * size if body else None)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def test_a_body_over_the_limit_is_refused_by_nginx_with_413(nginx):
    status, text = _post_size(nginx, 12 * 1024 * 1024)
    assert status == 413
    assert "far larger than this form accepts" not in text  # nginx's answer, not the app's


def test_an_upload_as_large_as_the_consoles_largest_reaches_the_app(nginx):
    from organisers.attendance import MAX_REPORT_BYTES

    # The sign-in takes no such body, so the app's own 413 shows that nginx let it through.
    status, text = _post_size(nginx, MAX_REPORT_BYTES + 4096, body=True)
    assert status == 413
    assert "far larger than this form accepts" in text


class _FromAddress(HTTPAdapter):
    """Connections from one local address (requests' documented hook for pool settings)."""

    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def test_the_app_sees_the_clients_address_not_a_forged_one(nginx, database):
    with requests.Session() as browser:
        browser.mount("https://", _FromAddress(CLIENT_ADDRESS))
        page = browser.get(nginx.url + "/admin/login", verify=nginx.cert, timeout=ANSWER_WITHIN)
        token = CSRF_RE.search(page.text).group(1)
        response = browser.post(
            nginx.url + "/admin/login",
            data={"email": "nobody@example.org", "password": "not a password",
                  "csrf_token": token},
            headers={"X-Forwarded-For": "203.0.113.66"},
            verify=nginx.cert, timeout=ANSWER_WITHIN,
        )
    assert response.status_code == 401
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            seen = conn.execute(sa.text(
                "SELECT ip FROM audit_log WHERE action = 'sign-in failed'")).scalars().all()
    finally:
        engine.dispose()
    assert seen == [CLIENT_ADDRESS]
