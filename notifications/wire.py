"""The wire format of our emails: the email package's SMTP policies (each repeated header
folded once), the fixed headers made once, and the MIME parts a message is built from."""

import base64
import binascii
import functools
import re
import uuid
from email import policy
from email.headerregistry import HeaderRegistry
from email.message import MIMEPart

from notifications import ical


# The email package's modern API with the SMTP policies checks every header it is given (no CR
# or LF gets in) and folds and encodes each one. SMTPUTF8 writes headers as UTF-8 (RFC 6532):
# only for a message whose addresses need it, which only a server offering SMTPUTF8 may take.
class _HeaderClasses(HeaderRegistry):
    """The standard header classes, each composed once: the stock registry builds a new class
    for every header set or read, a sixth of the time to build a message."""

    def __init__(self):
        super().__init__()
        self.composed = {}

    def __getitem__(self, name):
        key = name.lower()
        if key not in self.composed:
            self.composed[key] = super().__getitem__(name)
        return self.composed[key]


# Headers that differ in every message; every other header text (the constants, the sender,
# a batch's Date, an event's Subject) repeats from message to message.
_PER_MESSAGE = frozenset({"to", "message-id", "list-unsubscribe"})
# A header that is a list of <URI>s (RFC 2369): folded between them and never encoded, which
# would make a long link an encoded word no mail client reads as a URI.
_URI_LISTS = frozenset({"list-unsubscribe"})
_BETWEEN_URIS = re.compile(r"(?<=>)\s*,\s*")


class _WirePolicy(policy.EmailPolicy):
    """The SMTP policy, folding each repeated header text once rather than once per message."""

    def fold_binary(self, name, value):
        """As EmailPolicy does; a repeated header's folded bytes are remembered."""
        if name.lower() in _URI_LISTS:
            uris = _BETWEEN_URIS.split(str(value).strip())
            # A link too long for the name's line starts a line of its own.
            fits = len(f"{name}: {uris[0]},") <= self.max_line_length
            start = " " if fits else self.linesep + " "
            folded = f"{name}:{start}{(',' + self.linesep + ' ').join(uris)}{self.linesep}"
            return folded.encode("utf-8" if self.utf8 else "ascii")
        if name.lower() in _PER_MESSAGE:
            return super().fold_binary(name, value)
        # What folding depends on. Not the policy object itself: the generator clones it for
        # every part it writes. (Header objects compare and hash as their text.)
        key = (self.utf8, self.linesep, self.max_line_length, name, value)
        folded = _FOLDED.get(key)
        if folded is None:
            if len(_FOLDED) >= _FOLDED_LIMIT:  # a long-running worker sees many Dates
                _FOLDED.clear()
            folded = _FOLDED[key] = super().fold_binary(name, value)
        return folded


_FOLDED: dict[tuple, bytes] = {}
_FOLDED_LIMIT = 1024


# Folded within 76 rather than 78: the folder fills a continuation line with one encoded word,
# which RFC 2047 allows 75 characters (at 78 it writes words of 76).
WIRE = _WirePolicy(linesep="\r\n", max_line_length=76, header_factory=_HeaderClasses())
WIRE_UTF8 = WIRE.clone(utf8=True)


@functools.lru_cache(maxsize=512)
def fixed(name: str, value):
    """A header object made once per distinct text: the policy stores such an object as it
    is, without parsing the text again for every message (the largest cost of a build)."""
    return WIRE.header_factory(name, value)


# Every body is quoted-printable or base64, in which "=_" can't occur: a boundary starting
# with it can never collide with content, so one per nesting level serves every message.
_BOUNDARY = f"=_{uuid.uuid4().hex}"
HEADERS = {
    "mixed": fixed("Content-Type", f'multipart/mixed; boundary="{_BOUNDARY}m"'),
    "alternative": fixed("Content-Type", f'multipart/alternative; boundary="{_BOUNDARY}a"'),
    "plain": fixed("Content-Type", 'text/plain; charset="utf-8"'),
    "html": fixed("Content-Type", 'text/html; charset="utf-8"'),
    "quoted-printable": fixed("Content-Transfer-Encoding", "quoted-printable"),
    "base64": fixed("Content-Transfer-Encoding", "base64"),
    # Inline and without Content-Disposition, or Outlook and Gmail show no invite; the
    # method parameter must match METHOD inside, or Exchange rejects the message.
    **{method: fixed("Content-Type", f'text/calendar; method="{method}"; charset="UTF-8"')
       for method in ical.METHODS},
    "ics": fixed("Content-Type", 'application/ics; name="invite.ics"'),
    "attachment": fixed("Content-Disposition", 'attachment; filename="invite.ics"'),
    "MIME-Version": fixed("MIME-Version", "1.0"),
    "Auto-Submitted": fixed("Auto-Submitted", "auto-generated"),
    # Keep out-of-office and other automatic replies from answering a notification.
    "X-Auto-Response-Suppress": fixed("X-Auto-Response-Suppress", "OOF, AutoReply"),
    # RFC 8058: a POST of this body to the List-Unsubscribe URL unsubscribes in one click.
    "List-Unsubscribe-Post": fixed("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
}


def part(content_type: str, encoding: str | None = None, payload=None) -> MIMEPart:
    part = MIMEPart(policy=WIRE)
    part["Content-Type"] = HEADERS[content_type]
    if encoding is not None:
        part["Content-Transfer-Encoding"] = HEADERS[encoding]
        part.set_payload(payload)
    return part


def text_part(subtype: str, text: str) -> MIMEPart:
    # Quoted-printable keeps the text readable in the raw message and every line short.
    body = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    return part(subtype, "quoted-printable", body)


def bytes_part(content_type: str, data: bytes) -> MIMEPart:
    # Base64 keeps the calendar's CRLFs and folding byte for byte.
    return part(content_type, "base64", base64.encodebytes(data).decode("ascii"))
