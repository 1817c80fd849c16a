"""Manage links: an HMAC of a per-registration nonce, so the database alone can't forge one."""

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode

from flask import current_app

from registration.models import Registration


def _token_for(nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    mac = hmac.new(key, b"manage-link:" + nonce.encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(mac).rstrip(b"=").decode()


def digest(token: str) -> str:
    """The only form of a token the database keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(registration: Registration) -> None:
    """Give the registration a fresh manage link, revoking any earlier one."""
    registration.token_nonce = secrets.token_urlsafe(24)
    registration.token_digest = digest(_token_for(registration.token_nonce))


def manage_token(registration: Registration) -> str:
    """The token in the registration's current manage link (256 bits)."""
    return _token_for(registration.token_nonce)
