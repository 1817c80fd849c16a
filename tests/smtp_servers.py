"""Real SMTP servers (aiosmtpd) for tests and benchmarks: they accept, refuse on cue, stall until
released, go down and come back on the same port, and count what they got by Message-ID."""

import asyncio
import email
import re
import socket
import threading
from collections import Counter, deque
from email import policy

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
# A stalled handler gives up after this long, so a test that forgets to release can't hang.
STALL_LIMIT_SECONDS = 60


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID header of a raw message, read from its header block only."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode() if match else None


class Stall:
    """Holds a server at one SMTP command until the test releases it."""

    def __init__(self):
        self.reached = threading.Event()  # the server has seen the command and is holding it
        self.released = threading.Event()

    def release(self) -> None:
        """Let the held command (and any later one) answer."""
        self.released.set()

    async def hold(self) -> None:
        """Wait, without blocking the server's event loop, until released."""
        self.reached.set()
        await asyncio.to_thread(self.released.wait, STALL_LIMIT_SECONDS)


class SMTPHandler:
    """A mail server that accepts, or answers what a test tells it to, and keeps what it got."""

    def __init__(self):
        self.delivered = []  # (mail_from, rcpt_tos, raw bytes)
        self.rcpt_replies = {}  # address -> reply, e.g. "550 5.1.1 No such user", every time
        self.queued_rcpt_replies = {}  # address -> deque of replies, one per attempt, then 250
        self.mail_reply = None
        self.data_reply = None
        self.sessions = []
        self.during_data = None  # called while the client waits for the DATA reply
        self.stall_mail = None  # a Stall that holds every MAIL FROM until released
        self.lock = threading.RLock()
        # Notified whenever a session starts sending or a message is delivered.
        self.changed = threading.Condition(self.lock)

    def refuse_next(self, address: str, *replies: str) -> None:
        """Answer the next len(replies) RCPTs for this address with these replies, in order."""
        self.queued_rcpt_replies.setdefault(address, deque()).extend(replies)

    def stall_at_mail(self) -> Stall:
        """Hold every MAIL FROM from now on until the returned stall is released."""
        self.stall_mail = Stall()
        return self.stall_mail

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            if not any(s is session for s in self.sessions):
                self.sessions.append(session)
                self.changed.notify_all()
        if self.stall_mail:
            await self.stall_mail.hold()
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        queued = self.queued_rcpt_replies.get(address)
        if queued:
            return queued.popleft()
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.during_data:
            self.during_data()
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.delivered.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
            self.changed.notify_all()
        return "250 2.0.0 Ok: queued as 4F2A9"

    def wait_until(self, predicate, timeout: float) -> bool:
        """Block until predicate() holds (checked on each new session or delivery)."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def messages(self):
        """What was delivered, parsed."""
        return [email.message_from_bytes(raw, policy=policy.default)
                for _, _, raw in self.delivered]

    def message_ids(self) -> Counter:
        """How many times each Message-ID was delivered."""
        with self.lock:
            return Counter(message_id_of(raw) for _, _, raw in self.delivered)


class SMTPServer:
    """An aiosmtpd server on a fixed loopback port that can be stopped and started again, so a
    client sees "connection refused" while it is down and the same address once it is back."""

    def __init__(self, handler=None, port=None, **controller_options):
        self.handler = handler or SMTPHandler()
        self.port = port or free_port()
        self.options = controller_options
        self.controller = None

    @property
    def is_up(self) -> bool:
        return self.controller is not None

    def start(self) -> "SMTPServer":
        """Listen (again); returns once the server answers."""
        if self.controller is None:
            # A stopped controller's event loop is closed: each start needs a new one.
            self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                         **self.options)
            self.controller.start()
        return self

    def stop(self) -> None:
        """Stop listening; connections are refused until start()."""
        if self.handler.stall_mail:
            self.handler.stall_mail.release()
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
