"""Links that are keys: a registration's manage link and a person's link to all their sessions.

Each is the row's id and an HMAC of its nonce under the server's key (with a purpose of its own,
so one kind of link is never another), so the database alone can't forge one, and a link keeps
working through a change of SECRET_KEY for as long as the key it was made with is listed in
SECRET_KEY_FALLBACKS. Only a digest of the MAC is stored; a new nonce revokes the old links."""

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode

import sqlalchemy as sa
from flask import current_app

from extensions import db
from registration.models import Person, Registration

# The largest id a link may name: PostgreSQL's integer, so a longer number is "no such link"
# rather than a database error.
MAX_ID = 2**31 - 1

MANAGE = b"manage-link:"
ME = b"me-link:"
# The List-Unsubscribe link of reminders and follow-ups: over the registration's nonce like its
# manage link, but with a purpose of its own, so neither link opens what the other does.
UNSUBSCRIBE = b"unsubscribe:"
# Each kind of holder has its own purpose.
PURPOSES = {Registration: MANAGE, Person: ME}


def _mac(key: str, nonce: str, purpose: bytes = MANAGE) -> str:
    mac = hmac.new(key.encode(), purpose + nonce.encode(), hashlib.sha256).digest()
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


def issue_token(holder: Registration | Person) -> None:
    """Give the registration (or person) a fresh link, revoking any earlier one."""
    holder.token_nonce = secrets.token_urlsafe(24)
    holder.token_digest = digest(_mac(current_app.config["SECRET_KEY"], holder.token_nonce,
                                      PURPOSES[type(holder)]))


def _token(holder: Registration | Person, purpose: bytes | None = None) -> str:
    purpose = purpose or PURPOSES[type(holder)]
    mac = _mac(current_app.config["SECRET_KEY"], holder.token_nonce, purpose)
    return f"{holder.id}.{mac}"


def manage_token(registration: Registration) -> str:
    """The token of the registration's manage link, made with the current key: its id, a dot
    and the MAC (256 bits). Every email carries one made when it is built."""
    return _token(registration)


def me_token(person: Person) -> str:
    """The token of the person's link to all their sessions, made like a manage link's."""
    return _token(person)


def unsubscribe_token(registration: Registration) -> str:
    """The token of the registration's unsubscribe link: it stops reminders and follow-ups and
    can do nothing else (a new nonce, as for the manage link, revokes it)."""
    return _token(registration, UNSUBSCRIBE)


def split(token: str) -> tuple[int | None, str]:
    """(id, MAC) of a link; the id is None for a link sent as a bare MAC (manage links made
    before links carried the id), found by its digest instead. ValueError for what no link can
    be."""
    selector, dot, mac = token.partition(".")
    if not dot:
        return None, token
    if not (selector.isascii() and selector.isdigit() and len(selector) <= len(str(MAX_ID))
            and int(selector) <= MAX_ID):
        raise ValueError("not an id")
    return int(selector), mac


def holder(model, token: str, *, by_digest: bool = False, purpose: bytes | None = None):
    """The row of `model` (a registration or a person) a link names, if the link is current:
    made for the row's nonce with SECRET_KEY or a key still in SECRET_KEY_FALLBACKS. A link
    sent as a bare MAC (before links carried the id) is found by its digest when `by_digest`.
    `purpose` names another kind of link over the same nonce (UNSUBSCRIBE)."""
    if not token or len(token) > 100:
        return None
    try:
        row_id, mac = split(token)
    except ValueError:
        return None
    if row_id is None:
        if not by_digest:
            return None
        row = db.session.scalar(sa.select(model).where(model.token_digest == digest(mac)))
    else:
        row = db.session.get(model, row_id)
    if row is None or not is_valid(row, mac, purpose):
        return None
    return row


def is_valid(holder: Registration | Person, mac: str, purpose: bytes | None = None) -> bool:
    """Whether the MAC was made for this holder's current nonce with a listed key."""
    purpose = purpose or PURPOSES[type(holder)]
    return any(hmac.compare_digest(mac.encode(), _mac(key, holder.token_nonce, purpose).encode())
               for key in _keys())
