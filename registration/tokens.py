"""Manage links: the registration's id and an HMAC of its nonce under the server's key, so the
database alone can't forge one, and a link keeps working through a change of SECRET_KEY for as
long as the key it was made with is listed in SECRET_KEY_FALLBACKS."""

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode

from flask import current_app

from registration.models import Registration

# The largest id a link may name: PostgreSQL's integer, so a longer number is "no such link"
# rather than a database error.
MAX_ID = 2**31 - 1


def _mac(key: str, nonce: str) -> str:
    mac = hmac.new(key.encode(), b"manage-link:" + nonce.encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(mac).rstrip(b"=").decode()


def _keys() -> list[str]:
    """The current key first, then the earlier ones links may still have been made with."""
    return [current_app.config["SECRET_KEY"], *(current_app.config["SECRET_KEY_FALLBACKS"] or ())]


def signing_keys() -> list[str]:
    """The keys for an itsdangerous serializer: the earlier ones first and the current one
    last, which signs; what was signed with a listed earlier key is still accepted."""
    return _keys()[::-1]


def digest(token: str) -> str:
    """The only form of a link's MAC the database keeps (for links sent as a bare MAC)."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(registration: Registration) -> None:
    """Give the registration a fresh manage link, revoking any earlier one."""
    registration.token_nonce = secrets.token_urlsafe(24)
    registration.token_digest = digest(_mac(current_app.config["SECRET_KEY"],
                                            registration.token_nonce))


def manage_token(registration: Registration) -> str:
    """The token of the registration's manage link, made with the current key: its id, a dot
    and the MAC (256 bits). Every email carries one made when it is built."""
    return f"{registration.id}.{_mac(current_app.config['SECRET_KEY'], registration.token_nonce)}"


def split(token: str) -> tuple[int | None, str]:
    """(registration id, MAC) of a link; the id is None for a link sent as a bare MAC (before
    links carried the id), found by its digest instead. ValueError for what no link can be."""
    selector, dot, mac = token.partition(".")
    if not dot:
        return None, token
    if not (selector.isascii() and selector.isdigit() and len(selector) <= len(str(MAX_ID))
            and int(selector) <= MAX_ID):
        raise ValueError("not a registration id")
    return int(selector), mac


def is_valid(registration: Registration, mac: str) -> bool:
    """Whether the MAC was made for this registration's current nonce with a listed key."""
    return any(hmac.compare_digest(mac.encode(), _mac(key, registration.token_nonce).encode())
               for key in _keys())
