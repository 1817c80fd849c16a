"""Transports: hand a built email to an SMTP relay or an .eml folder, and say how it went."""

import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from notifications.mail import OutgoingMail

SENT, TRANSIENT, PERMANENT = "sent", "transient", "permanent"
# What the console shows for an address the server can't take: sending again won't help.
NO_SMTPUTF8 = ("not sent: the mail server does not offer SMTPUTF8, which this address needs "
               "(its part before the @ is not plain ASCII)")


@dataclass(frozen=True)
class Outcome:
    """What became of one message: sent, transient (try later) or permanent (give up)."""

    status: str
    reply: str


class _NoSMTPUTF8(Exception):
    """The message needs SMTPUTF8 and the server does not offer it."""


class SenderRejected(Exception):
    """The server refused us rather than the recipient (MAIL FROM, login, greeting)."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


# An address as servers quote it in replies ("<anna@example.org>: Recipient address rejected").
_QUOTED_ADDRESS = re.compile(r"""([^\s<>()\[\],;:"'@]+)@([^\s<>()\[\],;:"'@]+)""")


def masked(reply: str) -> str:
    """A server's reply fit for the log: each address it quotes becomes a***@example.org.
    (The console, behind sign-in, keeps the whole reply.)"""
    return _QUOTED_ADDRESS.sub(lambda m: f"{m.group(1)[0]}***@{m.group(2)}", reply)


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def _classify(code: int, text) -> Outcome:
    # 4xx: try again later. 5xx: this message will never be accepted. Anything else is odd
    # enough (a 3xx where 250 belongs) to be worth one more try.
    status = PERMANENT if 500 <= code < 600 else TRANSIENT
    return Outcome(status, _reply(code, text))


class FileTransport:
    """Write each message to MAIL_OUTBOX_DIR as <Message-ID>.eml, so a re-send replaces it."""

    def __init__(self, config):
        self.folder = Path(config["MAIL_OUTBOX_DIR"])

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def send(self, mail: OutgoingMail) -> Outcome:
        """Write the message atomically; a reader never sees half a file."""
        path = self.folder / filename(mail.message_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(mail.data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            return Outcome(TRANSIENT, f"could not write {path}: {exc}")
        return Outcome(SENT, f"written to {path}")


def filename(message_id: str) -> str:
    """A file name made from a Message-ID: only letters, digits, dot, dash, underscore and @."""
    stem = re.sub(r"[^A-Za-z0-9.@_-]", "_", message_id.strip("<>")).lstrip(".")
    return f"{stem[:200] or 'message'}.eml"


class SMTPTransport:
    """One SMTP connection for a batch, opened on first use and re-opened after a drop or 421."""

    def __init__(self, config):
        self.host = config["SMTP_HOST"]
        self.port = config["SMTP_PORT"]
        self.security = config["SMTP_SECURITY"]
        self.username = config["SMTP_USERNAME"]
        self.password = config["SMTP_PASSWORD"]
        self.timeout = config["SMTP_TIMEOUT_SECONDS"]
        self.connection: smtplib.SMTP | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        """Say QUIT if the connection is still there; drop it either way."""
        if self.connection is None:
            return
        try:
            self.connection.quit()
        except (smtplib.SMTPException, OSError):
            self.connection.close()
        self.connection = None

    def _drop(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    def _connect(self) -> smtplib.SMTP:
        # Loading the system's CA certificates takes milliseconds: only when TLS is used.
        context = ssl.create_default_context() if self.security != "none" else None
        if self.security == "ssl":
            connection = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.security == "starttls":
                connection.starttls(context=context)
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password)
        except BaseException:
            connection.close()
            raise
        return connection

    def send(self, mail: OutgoingMail) -> Outcome:
        """Send one message; raise SenderRejected when no message could get through."""
        try:
            return self._transaction(mail)
        except _NoSMTPUTF8:
            # Nothing was sent (no MAIL FROM yet): the connection stays good for the rest.
            return Outcome(PERMANENT, NO_SMTPUTF8)
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            return Outcome(TRANSIENT, f"connection closed: {exc}")
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            raise SenderRejected(_reply(exc.smtp_code, exc.smtp_error)) from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. no STARTTLS: a setting to fix
            self._drop()
            raise SenderRejected(str(exc)) from None
        except smtplib.SMTPResponseException as exc:
            # A refused greeting, EHLO or STARTTLS: the server, not the message.
            self._drop()
            if 500 <= exc.smtp_code < 600:
                raise SenderRejected(_reply(exc.smtp_code, exc.smtp_error)) from None
            return Outcome(TRANSIENT, _reply(exc.smtp_code, exc.smtp_error))
        except (smtplib.SMTPException, OSError) as exc:  # timeouts, refusals, TLS, DNS
            self._drop()
            return Outcome(TRANSIENT, f"{type(exc).__name__}: {exc}")

    def _transaction(self, mail: OutgoingMail) -> Outcome:
        # Driven by hand rather than sendmail(), which throws the server's final reply away.
        if self.connection is None:
            self.connection = self._connect()
            code, text = self._mail(mail)
        else:
            try:
                code, text = self._mail(mail)
            except smtplib.SMTPServerDisconnected:
                # Closed by the server while idle between two messages; nothing was sent yet,
                # so one fresh connection is safe. (A drop after DATA is not retried here.)
                self._drop()
                self.connection = self._connect()
                code, text = self._mail(mail)
        if code != 250:
            return self._abort(code, text, sender=True)
        for recipient in mail.recipients:
            code, text = self.connection.rcpt(recipient)
            if code not in (250, 251):
                return self._abort(code, text)
        try:
            code, text = self.connection.data(mail.data)
        except smtplib.SMTPDataError as exc:  # DATA itself refused, before the body went
            return self._abort(exc.smtp_code, exc.smtp_error)
        if code != 250:
            return self._abort(code, text)
        return Outcome(SENT, _reply(code, text))

    def _mail(self, mail: OutgoingMail):
        # An address beyond ASCII goes only with SMTPUTF8 (RFC 6531), never re-encoded. Asked
        # before MAIL FROM: smtplib's own refusal would read as a setting to fix and stop the
        # whole batch, while only this message can't go.
        if not mail.smtputf8:
            return self.connection.mail(mail.envelope_from)
        if not self.connection.has_extn("smtputf8"):
            raise _NoSMTPUTF8
        return self.connection.mail(mail.envelope_from, ["SMTPUTF8"])

    def _abort(self, code: int, text, sender: bool = False) -> Outcome:
        if code == 421:  # the server is closing the channel; the next message reconnects
            self._drop()
            return Outcome(TRANSIENT, _reply(code, text))
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
        if sender and 500 <= code < 600:
            raise SenderRejected(_reply(code, text))
        return _classify(code, text)


def open_transport(config):
    """The transport MAIL_BACKEND names, as a context manager that closes it after the batch."""
    if config["MAIL_BACKEND"] == "smtp":
        return SMTPTransport(config)
    return FileTransport(config)
