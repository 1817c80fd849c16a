"""How often a password may be tried: the sign-in's rate-limit keys, and the device cookie that
lets a browser which has signed in before past an address's lock.

Three limits guard the sign-in (the settings are in app.py):
- every attempt from one IP (RATELIMIT_LOGIN_PER_IP);
- failures for one address from one IP (RATELIMIT_LOGIN_PER_ADDRESS_IP), which stop a guesser
  at one address without touching the organiser anywhere else;
- failures for one address from browsers that never signed in to it (RATELIMIT_LOGIN_PER_ADDRESS),
  which caps guessing spread over many IPs. A browser that did sign in carries a signed device
  cookie and is counted on its own, so no stranger can lock the organiser out of her own browser.
Only failures count (a right password clears the counts it was checked against), and unknown
addresses are counted exactly like known ones, so a 429 never tells which accounts exist.
The profile page's current-password check counts its failures per organiser, under the second
limit, so a session left open is no way to guess the password at leisure.
"""

import hashlib
import ipaddress
import secrets
from datetime import datetime, timedelta

from flask import Response, current_app, g, request, session
from itsdangerous import BadSignature, URLSafeSerializer

from extensions import limiter
from organisers import auth
from registration import times, tokens

DEVICE_COOKIE = "organiser_device"
# Long enough that an organiser who signs in a few times a year keeps her way past a lock.
DEVICE_LIFETIME = timedelta(days=180)
FAILURES = "login-failures:"
PASSWORD_CHECK_FAILURES = "password-check-failures:"


def failed(response: Response) -> bool:
    """Whether this answer is a failed sign-in, the only kind the per-address limits count."""
    return response.status_code == 401


def password_check_key() -> str:
    """Rate-limit key: the signed-in organiser whose current password the profile checks."""
    state = session.get("organiser")
    return f"{PASSWORD_CHECK_FAILURES}{state.get('id') if isinstance(state, dict) else ''}"


def wrong_current_password(response: Response) -> bool:
    """Whether the profile refused this answer for a wrong current password (the view says)."""
    return bool(g.get("wrong_current_password"))


def _address_digest() -> str:
    # Rate-limit keys end up in Redis and in the limiter's log lines: no address in clear there.
    key = auth.email_key(request.form.get("email") or "")[:320]
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _client_network() -> str:
    # One IPv6 host usually holds a whole /64: counting its addresses apart would give it
    # billions of fresh starts.
    address = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def address_ip_key() -> str:
    """Rate-limit key: the submitted address (case-folded, known or not) and the client's IP."""
    return f"{FAILURES}{_address_digest()}:{_client_network()}"


def address_key() -> str:
    """Rate-limit key: the submitted address; its own for a browser that signed in to it."""
    digest = _address_digest()
    nonce = _device_nonce(digest, times.now())
    return f"{FAILURES}{digest}:device:{nonce}" if nonce else f"{FAILURES}{digest}"


def forget_failures() -> None:
    """After a right password: clear the failure counts this sign-in was checked against."""
    for checked in limiter.current_limits:
        if not any(str(part).startswith(FAILURES) for part in checked.request_args):
            continue
        try:
            limiter.limiter.clear(checked.limit, *checked.request_args)
        except Exception:  # the store is down: the counts age out on their own
            if not current_app.config["RATELIMIT_SWALLOW_ERRORS"]:
                raise
            current_app.logger.warning("could not clear the sign-in failure counts")


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(tokens.signing_keys(), salt="organiser-device")


def _device_nonce(digest: str, now: datetime) -> str | None:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw)
    except BadSignature:
        return None
    if not (isinstance(value, dict) and value.get("address") == digest
            and isinstance(value.get("nonce"), str)
            and isinstance(value.get("at"), int | float)):
        return None
    if now.timestamp() - value["at"] > DEVICE_LIFETIME.total_seconds():
        return None
    return value["nonce"]


def remember_device(response: Response, now: datetime) -> Response:
    """After a right password: give this browser the device cookie of the submitted address."""
    value = _serializer().dumps({"address": _address_digest(), "nonce": secrets.token_urlsafe(16),
                                 "at": now.timestamp()})
    # Sent only to the sign-in itself, never read by a script, never across sites.
    response.set_cookie(DEVICE_COOKIE, value, max_age=int(DEVICE_LIFETIME.total_seconds()),
                        path=request.path, secure=current_app.config["SESSION_COOKIE_SECURE"],
                        httponly=True, samesite="Strict")
    return response
