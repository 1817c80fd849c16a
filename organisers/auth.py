"""Organiser sign-in: password hashes, the console's session, and the audit log."""

import functools
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from flask import current_app, g, redirect, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from extensions import db
from organisers.models import AuditEntry, Organiser
from registration import times

# OWASP's floor for scrypt (N=2^17, r=8, p=1): about 0.4 s and 128 MiB per hash here.
DEFAULT_HASH_METHOD = "scrypt:131072:8:1"
# Checked for an unknown address, so that it costs what a wrong password costs. A constant,
# so that no process pays for making it, and the first miss is no slower than the next.
_DUMMY_HASH = (
    "scrypt:131072:8:1$Of38cUBFSR5vr5Ue$6e9643d466b52384a7f227e935748b871697355fead749c7b38ae84"
    "1eeabae9dca229e3b507c3fc521cc22a26f110b4b1d2844a66fce9beaccc5d249e11952cd"
)
MIN_PASSWORD_LENGTH = 12


class PasswordTooShort(ValueError):
    """A new password below the minimum length."""


def hash_password(password: str) -> str:
    """A salted hash of the password at the configured cost."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooShort(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return generate_password_hash(password, current_app.config["PASSWORD_HASH_METHOD"])


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    if method == DEFAULT_HASH_METHOD:
        return _DUMMY_HASH
    return generate_password_hash("not a password anyone has", method)


def email_key(address: str) -> str:
    """How an organiser's address is stored and looked up: trimmed and case-folded."""
    return address.strip().casefold()


def find_organiser(address: str) -> Organiser | None:
    """The account of this address, if any (an address with control characters has none)."""
    key = email_key(address)
    if not key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return None  # and PostgreSQL refuses NUL in text outright
    return db.session.scalar(sa.select(Organiser).where(Organiser.email == key))


def authenticate(address: str, password: str) -> Organiser | None:
    """The organiser if the password is right; the same work is done for an unknown address."""
    organiser = find_organiser(address)
    if organiser is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return None
    if not password_matches(organiser, password):
        return None
    return organiser


def start_session(organiser: Organiser, now: datetime) -> None:
    """Sign in: a fresh session (nothing of the anonymous one survives) bound to the account."""
    session.clear()
    session["organiser"] = {"id": organiser.id, "version": organiser.session_version,
                            "seen": now.timestamp()}
    organiser.last_login_at = now


def password_matches(organiser: Organiser, password: str) -> bool:
    """Whether this is the organiser's password."""
    return check_password_hash(organiser.password_hash, password)


def keep_session(organiser: Organiser) -> None:
    """Keep this browser signed in after revoke_sessions voided every other one (the
    organiser changed their own password here)."""
    state = session.get("organiser")
    if isinstance(state, dict):
        state["version"] = organiser.session_version
        session.modified = True


def revoke_sessions(organiser: Organiser) -> None:
    """Void every session cookie of this account (sign-out, a new password)."""
    organiser.session_version += 1


def end_session(organiser: Organiser | None) -> None:
    """Sign out everywhere: void every cookie of this account, and clear this one."""
    if organiser is not None:
        revoke_sessions(organiser)
    session.clear()


def current_organiser(now: datetime) -> Organiser | None:
    """The signed-in organiser, or None if not signed in, idle too long, or signed out."""
    state = session.get("organiser")
    if not isinstance(state, dict):
        return None
    idle = current_app.config["ORGANISER_IDLE_MINUTES"] * 60
    if now.timestamp() - float(state.get("seen", 0)) > idle:
        session.pop("organiser", None)
        return None
    organiser = db.session.get(Organiser, state.get("id"))
    if organiser is None or organiser.session_version != state.get("version"):
        session.pop("organiser", None)
        return None
    # Only the organiser's own key ages: the public form's CSRF token is left alone.
    state["seen"] = now.timestamp()
    session.modified = True
    return organiser


def login_required(view):
    """Let the view run only for a signed-in organiser; send anyone else to the sign-in page."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        organiser = current_organiser(times.now())
        if organiser is None:
            target = request.full_path if request.method == "GET" else None
            return redirect(url_for("organisers.login", next=target), 303)
        g.organiser = organiser
        # For the audit log: services are handed the client's address, never the request.
        g.client_ip = request.remote_addr
        return view(*args, **kwargs)

    wrapped.login_required = True
    return wrapped


def _printable(text: str, limit: int) -> str:
    # What a stranger typed may hold control characters; PostgreSQL refuses NUL in text.
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text[:limit])


def audit(action: str, target: str = "", detail: dict | None = None, *,
          organiser: Organiser | None = None, actor: str | None = None,
          ip: str | None = None) -> AuditEntry:
    """Add an entry to the audit log (flushed with the change it records; never committed).
    The organiser and client address default to those login_required saw for this request."""
    organiser = organiser or g.get("organiser")
    entry = AuditEntry(
        at=times.now(),
        organiser=organiser,
        actor=_printable(actor or (organiser.email if organiser else ""), 320),
        action=action,
        target=_printable(target, 200),
        detail=detail,
        ip=ip or g.get("client_ip"),
    )
    db.session.add(entry)
    return entry
