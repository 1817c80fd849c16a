"""Email addresses: the wire form that is stored and sent, the form people read, and the key
by which two sign-ups are the same person. email-validator decides all three (IDNA 2008)."""

from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

__all__ = ["Address", "EmailNotValidError", "display", "email_key", "parse"]


@dataclass(frozen=True)
class Address:
    """One address in the forms each use needs."""

    # For SMTP and the database: the domain in its IDNA 2008 ASCII form (xn--…).
    wire: str
    # For people: the domain in Unicode, as they typed it (normalised).
    display: str
    # The local part is beyond ASCII: only a server offering SMTPUTF8 can take it.
    needs_smtputf8: bool

    @property
    def key(self) -> str:
        """The repeat key: the wire form in lower case (see email_key)."""
        return self.wire.lower()


def parse(text: str, *, check_deliverability: bool = False,
          test_environment: bool = False) -> Address:
    """The address in its wire and display forms; raises EmailNotValidError for people to read.

    Never Python's "idna" codec: it is IDNA 2003, which turns faß.de into fass.de, another
    domain.
    """
    result = validate_email(text, check_deliverability=check_deliverability,
                            allow_smtputf8=True, test_environment=test_environment)
    # ascii_email is None when the local part is beyond ASCII; the domain still goes as ASCII.
    wire = result.ascii_email or f"{result.local_part}@{result.ascii_domain}"
    return Address(wire, result.normalized, result.smtputf8)


def email_key(text: str) -> str:
    """How two addresses are compared: the wire form in lower case, so faß.de and fass.de stay
    two domains (and straße@ and strasse@ two mailboxes: lower(), not casefold(), which would
    make ß "ss") while full-width letters fold into their ASCII twins; text that is no address,
    just trimmed and lowered."""
    try:
        return parse(text).key
    except EmailNotValidError:
        return text.strip().lower()


@lru_cache(maxsize=1024)
def display(wire: str) -> str:
    """The form of a stored address to show people (Unicode domain); as given if unreadable."""
    # Only an A-label (xn--) reads differently in Unicode: everything else is shown as stored,
    # without validating it again (the console and exports list many addresses).
    if "xn--" not in wire.casefold():
        return wire
    try:
        return parse(wire, test_environment=True).display
    except EmailNotValidError:
        return wire
