"""A real IMAP server for tests: Debian's Dovecot as a process of its own (never the system's
service), configured under a temporary folder, on free loopback ports, with one user; plain, or
with TLS (STARTTLS and implicit TLS) under a certificate for 127.0.0.1 made here. Helpers put
messages in (APPEND) and look at what is where, as a mail client would."""

import datetime
import email
import grp
import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

from tests.smtp_servers import free_port

DOVECOT = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
HOW_TO_ENABLE = "install dovecot-imapd (apt-get install dovecot-imapd) to run the IMAP tests"
USERNAME = "forum-replies"
# The address whose mail lands in that mailbox (the invites' ORGANIZER).
REPLIES_EMAIL = "replies@example.org"
PASSWORD = "correct horse imap staple"
START_TIMEOUT_SECONDS = 15


def missing_dovecot() -> str | None:
    """Why the IMAP tests can't run here, in one line, or None when they can."""
    if not DOVECOT:
        return f"Dovecot is not installed: {HOW_TO_ENABLE}"
    return None


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signs for 127.0.0.1 and localhost: (ca, cert, key) files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Forum test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
              key_encipherment=False, data_encipherment=False, key_agreement=False,
              encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def _list_name(line: bytes) -> str:
    # (\HasNoChildren) "." "R&AOk-ponses": the name as sent, after Dovecot's "." separator.
    return line.decode().rsplit(' "." ', 1)[-1]


class DovecotServer:
    """One Dovecot on 127.0.0.1: `port` speaks plain IMAP (STARTTLS with tls=True) and, with
    tls=True, `ssl_port` implicit TLS, trusted through `ca_file`. `capability` replaces what
    the server announces after login (e.g. without MOVE, to test the way round it).

        with DovecotServer() as server:
            server.append(b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
            app.config.update(server.settings())
    """

    def __init__(self, *, tls: bool = False, capability: str | None = None):
        self.tls = tls
        self.capability = capability
        self.port = free_port()
        self.ssl_port = free_port() if tls else None
        self.ca_file: Path | None = None
        self.folder: Path | None = None
        self.process = None

    def _config(self) -> str:
        folder = self.folder
        if os.geteuid() == 0:
            # Dovecot refuses to run its login processes, or touch mail, as root: Debian's
            # package makes these two users for exactly that.
            login_user, mail_user, internal_user = "dovenull", "dovecot", "root"
        else:  # an unprivileged Dovecot runs every process as the user who started it
            login_user = mail_user = internal_user = pwd.getpwuid(os.geteuid()).pw_name
        if self.tls:
            ssl_lines = (f"ssl = required\nssl_cert = <{folder / 'cert.pem'}\n"
                         f"ssl_key = <{folder / 'key.pem'}\ndisable_plaintext_auth = yes")
            imaps = f"address = 127.0.0.1\n    port = {self.ssl_port}\n    ssl = yes"
        else:
            ssl_lines = "ssl = no\ndisable_plaintext_auth = no"
            imaps = "port = 0"
        capability = f"imap_capability = {self.capability}" if self.capability else ""
        return f"""
base_dir = {folder / 'run'}
state_dir = {folder / 'state'}
log_path = {folder / 'dovecot.log'}
protocols = imap
listen = 127.0.0.1
{ssl_lines}
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name}
default_login_user = {login_user}
mail_location = maildir:{folder / 'mail'}/%u
# Debian's dovecot user is a system account, below the default floor for mail users.
first_valid_uid = {pwd.getpwnam(mail_user).pw_uid}
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder / 'users'}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={pwd.getpwnam(mail_user).pw_gid} home={folder / 'mail'}/%u
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
"""

    def start(self) -> "DovecotServer":
        """Write the configuration and start Dovecot; returns once it greets."""
        # Not pytest's tmp_path: the login processes (another user) must reach the sockets.
        self.folder = Path(tempfile.mkdtemp(prefix="forum-dovecot-"))
        self.folder.chmod(0o755)
        for name in ("run", "state", "mail"):
            (self.folder / name).mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder / "mail", "dovecot", "dovecot")
        users = self.folder / "users"
        users.write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}::::::\n")
        users.chmod(0o600)
        if self.tls:
            self.ca_file = _certificate(self.folder)[0]
        (self.folder / "dovecot.conf").write_text(self._config())
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.folder / "dovecot.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "stderr.log", "wb"), start_new_session=True)
        try:
            self._wait_until_greeting()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_greeting(self) -> None:
        attempts = int(START_TIMEOUT_SECONDS / 0.05)
        for _ in range(attempts):
            try:
                imaplib.IMAP4("127.0.0.1", self.port, timeout=5).logout()
                return
            except (OSError, imaplib.IMAP4.error):
                pass
            # Waiting on the process paces the loop and notices at once if Dovecot gave up.
            try:
                code = self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"dovecot exited with {code}:\n{self.log()}")
        raise RuntimeError(f"dovecot did not greet within {START_TIMEOUT_SECONDS} s:\n"
                           f"{self.log()}")

    def log(self) -> str:
        """What Dovecot wrote (its log and stderr), for error messages."""
        return "\n".join(path.read_text(errors="replace")
                         for path in (self.folder / "stderr.log", self.folder / "dovecot.log")
                         if path.exists())

    def stop(self) -> None:
        """Stop Dovecot and every process it started, and remove its folder."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass  # the whole group has gone already, as it should
            self.process.wait()
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def settings(self, security: str | None = None) -> dict:
        """The app's IMAP_* settings (as environment strings) for this server."""
        security = security or ("starttls" if self.tls else "none")
        return {
            "IMAP_HOST": "127.0.0.1",
            "IMAP_PORT": str(self.ssl_port if security == "ssl" else self.port),
            "IMAP_USERNAME": USERNAME,
            "IMAP_PASSWORD": PASSWORD,
            "IMAP_SECURITY": security,
            "IMAP_CA_FILE": str(self.ca_file or ""),
            "REPLIES_EMAIL": REPLIES_EMAIL,
        }

    def client(self) -> imaplib.IMAP4:
        """A signed-in connection of our own, as a person's mail client would have."""
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        if self.tls:
            client.starttls(ssl.create_default_context(cafile=self.ca_file))
        client.login(USERNAME, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> str:
        """Put a message in a folder (unread); its UID there."""
        client = self.client()
        try:
            typ, data = client.append(folder, None, None, raw)
            assert typ == "OK", data
            # [APPENDUID <validity> <uid>] (RFC 4315), which Dovecot always sends.
            return data[0].decode().split("]")[0].split()[-1]
        finally:
            client.logout()

    def folders(self) -> set[str]:
        """The folders' names as the server lists them (modified UTF-7), unquoted."""
        client = self.client()
        try:
            _, lines = client.list()
            return {_list_name(line).strip('"') for line in lines}
        finally:
            client.logout()

    def subject(self, uid: str, folder: str = "INBOX") -> str:
        """The Subject of one message (read without marking it read)."""
        client = self.client()
        try:
            client.select(f'"{folder}"', readonly=True)
            _, data = client.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            [header] = [item[1] for item in data if isinstance(item, tuple)]
            return email.message_from_bytes(header)["Subject"]
        finally:
            client.logout()

    def messages(self, folder: str = "INBOX") -> dict[str, set[str]]:
        """The messages in a folder (an ASCII or modified UTF-7 name), not deleted: UID → its
        flags. {} for a missing folder."""
        client = self.client()
        try:
            typ, _ = client.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return {}
            typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
            found = {}
            for item in data:
                if not item:
                    continue
                words = item.decode().replace("(", " ").replace(")", " ").split()
                uid = words[words.index("UID") + 1]
                flags = set(words[words.index("FLAGS") + 1:]) - {"UID", uid}
                if "\\Deleted" not in flags:
                    found[uid] = flags
            return found
        finally:
            client.logout()

    def empty(self) -> None:
        """Remove every message and every folder but INBOX: a fresh mailbox for the next test."""
        client = self.client()
        try:
            typ, folders = client.list()
            for line in folders:
                name = _list_name(line)
                if name.strip('"') != "INBOX":
                    client.delete(name)
            client.select("INBOX")
            typ, data = client.search(None, "ALL")
            if data[0]:
                client.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
                client.expunge()
        finally:
            client.logout()
