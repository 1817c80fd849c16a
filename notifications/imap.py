"""A small IMAP client over the standard library's imaplib: connect as the IMAP_* settings say,
list the messages of one folder not examined yet, fetch each without marking it read, and move
some to another folder. It knows nothing of what the messages mean (notifications/mailbox.py)."""

import base64
import imaplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

# Set on a message examined and left for people, so that the next run does not fetch it again.
# A keyword, not \Seen: people still see the message as unread.
EXAMINED = "$ForumSignupChecked"
# For connecting and for each answer: a server that says nothing for this long is given up on.
TIMEOUT_SECONDS = 30


class MailboxError(Exception):
    """The IMAP server could not be reached, or refused what we asked; the message names the
    server and says why, in one line."""


def folder_name(name: str) -> str:
    """A folder name as an IMAP quoted string, in modified UTF-7 (RFC 3501 §5.1.3) when it
    goes beyond ASCII."""
    encoded, run = [], []

    def flush():
        if run:
            utf16 = "".join(run).encode("utf-16-be")
            encoded.append("&" + base64.b64encode(utf16).decode("ascii").rstrip("=")
                           .replace("/", ",") + "-")
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            encoded.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    text = "".join(encoded)
    # imaplib sends arguments as they are: quoting (spaces, specials) is the caller's job.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data) -> str:
    """A server's answer (bytes, or a list of them) as one line of text."""
    if isinstance(data, list | tuple):
        data = b" ".join(item for item in data if isinstance(item, bytes))
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return " ".join(str(data).split())


def _reason(exc: Exception) -> str:
    # imaplib's errors carry the server's answer (often bytes) in args[0]; an OSError's args
    # start with its errno, and its str() says the rest.
    if isinstance(exc, imaplib.IMAP4.error) and exc.args:
        return _text(exc.args[0])
    return _text(str(exc)) or type(exc).__name__


class Mailbox:
    """One signed-in IMAP connection (see connect)."""

    def __init__(self, client: imaplib.IMAP4, server: str):
        self.client = client
        self.server = server
        self.capabilities: set[str] = set()
        self.keeps_keywords = False
        self._done_folders: set[str] = set()

    def _ok(self, what: str, call, *args):
        """Run one imaplib call; its data when the server says OK, else a MailboxError."""
        try:
            typ, data = call(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"IMAP server {self.server}: {what} failed ({_reason(exc)})"
                               ) from None
        if typ != "OK":
            raise MailboxError(f"IMAP server {self.server}: {what} refused ({_text(data)})")
        return data

    def read_capabilities(self) -> None:
        """Ask what the server offers (after login it may offer more than in its greeting)."""
        data = self._ok("CAPABILITY", self.client.capability)
        self.capabilities = {word.upper() for word in _text(data).split()}

    def select(self, folder: str) -> None:
        """Open a folder for reading and writing."""
        self._ok(f"opening folder {folder!r}", self.client.select, folder_name(folder))
        _, flags = self.client.response("PERMANENTFLAGS")
        # \* in PERMANENTFLAGS: the server keeps keywords we make up. Without it, our mark
        # would not stick, so every run examines every message still in the folder.
        self.keeps_keywords = any(b"\\*" in item for item in flags if isinstance(item, bytes))

    def unexamined(self, limit: int) -> list[str]:
        """The UIDs (oldest first, at most `limit`) of the messages not examined before."""
        criteria = "UNDELETED"
        if self.keeps_keywords:
            criteria += f" NOT KEYWORD {EXAMINED}"
        data = self._ok("SEARCH", self.client.uid, "SEARCH", criteria)
        uids = sorted({int(uid) for uid in _text(data).split()})
        return [str(uid) for uid in uids[:limit]]

    def fetch(self, uid: str) -> bytes | None:
        """The whole message, fetched with BODY.PEEK[] so it is not marked read; None when it is
        gone (another reader moved it meanwhile)."""
        data = self._ok(f"fetching message {uid}", self.client.uid, "FETCH", uid, "(BODY.PEEK[])")
        for item in data:
            # A literal comes as (b'7 (UID 12 BODY[] {2345}', b'<the message>').
            if isinstance(item, tuple) and b"BODY[]" in item[0].upper():
                words = item[0].replace(b"(", b" ").upper().split()
                if b"UID" in words and words[words.index(b"UID") + 1:][:1] == [uid.encode()]:
                    return item[1]
        return None

    def mark_examined(self, uid: str) -> None:
        """Mark a message as examined (a keyword; it stays unread), when the server keeps it."""
        if self.keeps_keywords:
            self._ok(f"marking message {uid}", self.client.uid, "STORE", uid, "+FLAGS.SILENT",
                     f"({EXAMINED})")

    def ensure_folder(self, folder: str) -> None:
        """Create the folder unless it exists."""
        if folder in self._done_folders:
            return
        data = self._ok(f"looking for folder {folder!r}", self.client.list, '""',
                        folder_name(folder))
        if not any(data_item for data_item in data):
            self._ok(f"creating folder {folder!r}", self.client.create, folder_name(folder))
        self._done_folders.add(folder)

    def move(self, uids: Sequence[str], folder: str) -> None:
        """Move these messages of the selected folder into another (created if missing)."""
        if not uids:
            return
        self.ensure_folder(folder)
        ids = ",".join(uids)
        target = folder_name(folder)
        if "MOVE" in self.capabilities:  # RFC 6851: one atomic command
            self._ok(f"moving messages to {folder!r}", self.client.uid, "MOVE", ids, target)
            return
        self._ok(f"copying messages to {folder!r}", self.client.uid, "COPY", ids, target)
        self._ok("marking moved messages deleted", self.client.uid, "STORE", ids,
                 "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" in self.capabilities:  # RFC 4315: expunge only the messages we moved
            self._ok("expunging moved messages", self.client.uid, "EXPUNGE", ids)
        else:
            # Also removes whatever else someone marked deleted in this folder: the only way
            # without UIDPLUS, and what their own client's "expunge" would do.
            self._ok("expunging moved messages", self.client.expunge)


def _tls_context(config) -> ssl.SSLContext:
    # Verifies the certificate and that it names IMAP_HOST; IMAP_CA_FILE replaces the system's
    # CAs (a private CA, or the tests' own).
    return ssl.create_default_context(cafile=config.get("IMAP_CA_FILE") or None)


@contextmanager
def connect(config) -> Iterator[Mailbox]:
    """A Mailbox signed in to IMAP_HOST as IMAP_USERNAME, logged out at the end."""
    host, port, security = config["IMAP_HOST"], config["IMAP_PORT"], config["IMAP_SECURITY"]
    server = f"{host}:{port}"
    try:
        if security == "ssl":
            client = imaplib.IMAP4_SSL(host, port, ssl_context=_tls_context(config),
                                       timeout=TIMEOUT_SECONDS)
        else:
            client = imaplib.IMAP4(host, port, timeout=TIMEOUT_SECONDS)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"IMAP server {server} can't be reached ({_reason(exc)})") from None
    mailbox = Mailbox(client, server)
    try:
        if security == "starttls":
            mailbox._ok("STARTTLS", client.starttls, _tls_context(config))
        mailbox._ok(f"login as {config['IMAP_USERNAME']!r}", client.login,
                    config["IMAP_USERNAME"], config["IMAP_PASSWORD"])
        mailbox.read_capabilities()
        yield mailbox
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass  # the connection is gone already; there is nothing left to close politely
