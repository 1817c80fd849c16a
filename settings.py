"""The settings: read from the environment (or a test's overrides), each checked and turned
into its value, a setting that is missing or malformed named in one line."""

import ipaddress
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


def _bool(name, raw):
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(name, raw, minimum, maximum):
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


def _choice(name, raw, choices):
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return value


def _email(name, raw):
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(raw, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ConfigError(f"{name} is not a valid email address ({exc})") from None


def _is_loopback(host):
    if host.strip("[]").lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _offsets(raw):
    from notifications.planner import parse_offsets

    try:
        return parse_offsets(raw)
    except ValueError as exc:
        raise ConfigError(f"REMINDER_OFFSETS {exc}") from None


ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")
DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origins(raw):
    """CORS_ORIGINS: the web origins (scheme://host[:port]) whose pages may post sign-ups to the
    API, each exactly as a browser sends it in the Origin header."""
    origins = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        match = ORIGIN.fullmatch(item)
        if (not match or match.group(3) == DEFAULT_PORTS[match.group(1)]
                or (match.group(3) and not 0 < int(match.group(3)) < 65536)):
            raise ConfigError(
                f"CORS_ORIGINS must list origins as browsers send them, like "
                f"https://www.example.org or http://localhost:8080 (lower case, no path, no "
                f"trailing slash, no default port), separated by commas: not {item!r}")
        origins.append(item)
    return frozenset(origins)


def _database_url(raw, instance_path):
    if not raw:
        return "sqlite:///" + str(Path(instance_path) / "forum.sqlite3")
    scheme = raw.split(":", 1)[0]
    if scheme in {"postgresql", "postgres"}:
        return "postgresql+psycopg:" + raw.split(":", 1)[1]
    if scheme in {"postgresql+psycopg", "sqlite"}:
        return raw
    raise ConfigError(f"DATABASE_URL must start with sqlite:// or postgresql://, not {scheme}://")


def _secret_key(raw, base_url_is_https, instance_path):
    if raw:
        return raw
    if base_url_is_https:
        raise ConfigError("SECRET_KEY is required when BASE_URL is https")
    # A development key made once and kept, so sessions and manage links survive restarts.
    key_file = Path(instance_path) / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


def _refuse_password_in_clear(service: str, host: str, security: str) -> None:
    """A login without TLS sends the password as readable text to whoever is on the path; only
    a server on this very host (nothing on the path) may take it that way."""
    if security == "none" and not _is_loopback(host):
        raise ConfigError(
            f"{service}_SECURITY=none would send {service}_USERNAME's password in plain text to "
            f"{host}: "
            f"set {service}_SECURITY to ssl or starttls (a login without TLS is allowed only to "
            f"a loopback {service}_HOST)")


def _imap_settings(env, get) -> dict:
    """The mailbox read over IMAP; IMAP_HOST empty means none is read."""
    security = _choice("IMAP_SECURITY", get("IMAP_SECURITY", "ssl"), ("ssl", "starttls", "none"))
    host = get("IMAP_HOST")
    if host:
        _refuse_password_in_clear("IMAP", host, security)
    ca_file = get("IMAP_CA_FILE")
    if ca_file and not Path(ca_file).is_file():
        raise ConfigError(f"IMAP_CA_FILE {ca_file!r} is not a readable file")
    settings = {
        "IMAP_HOST": host,
        "IMAP_PORT": _int("IMAP_PORT", get("IMAP_PORT", "993" if security == "ssl" else "143"),
                          1, 65535),
        "IMAP_USERNAME": get("IMAP_USERNAME"),
        "IMAP_PASSWORD": env.get("IMAP_PASSWORD", ""),
        "IMAP_SECURITY": security,
        "IMAP_CA_FILE": ca_file,
        "IMAP_FOLDER": get("IMAP_FOLDER", "INBOX"),
        "IMAP_DONE_FOLDER": get("IMAP_DONE_FOLDER", "Processed"),
        "MAILBOX_INTERVAL_SECONDS": _int("MAILBOX_INTERVAL_SECONDS",
                                         get("MAILBOX_INTERVAL_SECONDS", "60"), 5, 86400),
    }
    if host and not settings["IMAP_USERNAME"]:
        raise ConfigError("IMAP_HOST is set but IMAP_USERNAME is empty: name the mailbox's login")
    # Invites ask for answers once a mailbox is read; those answers go to the ORGANIZER, which
    # is REPLIES_EMAIL: without it they would go to ORGANISER_EMAIL and never be read.
    if host and not get("REPLIES_EMAIL"):
        raise ConfigError("IMAP_HOST is set but REPLIES_EMAIL is empty: set it to the address of "
                          "the mailbox that is read, so calendar replies and bounces reach it")
    for name in ("IMAP_FOLDER", "IMAP_DONE_FOLDER"):
        # * and % are LIST's wildcards: looking for such a folder would find others.
        if not settings[name] or any(ord(c) < 32 or c in "\x7f*%" for c in settings[name]):
            raise ConfigError(f"{name} must be a folder name without control characters, * or %")
    if settings["IMAP_FOLDER"] == settings["IMAP_DONE_FOLDER"]:
        raise ConfigError("IMAP_DONE_FOLDER must differ from IMAP_FOLDER")
    return settings


# Every page's Content-Security-Policy (app.py sets it): nothing inline, nothing from elsewhere.
# The console's message preview widens only its style-src (organisers/messages.py).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def load_settings(env, instance_path):
    """Read every setting from a mapping of environment strings; raise ConfigError on a bad one."""
    get = lambda name, default="": (env.get(name) or default).strip()  # noqa: E731

    base_url = get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"BASE_URL must be an absolute http(s) URL, not {base_url!r}")
    is_https = parts.scheme == "https"

    replies_email = _email("REPLIES_EMAIL", get("REPLIES_EMAIL")) if get("REPLIES_EMAIL") else ""
    mail_backend = _choice("MAIL_BACKEND", get("MAIL_BACKEND", "file"), ("file", "smtp"))
    settings = {
        "SECRET_KEY": _secret_key(get("SECRET_KEY"), is_https, instance_path),
        # Earlier keys, still accepted: Flask's sessions and the manage links in emails already
        # sent keep working through a rotation while their key is listed.
        "SECRET_KEY_FALLBACKS": [key.strip() for key in get("SECRET_KEY_FALLBACKS").split(",")
                                 if key.strip()],
        "SQLALCHEMY_DATABASE_URI": _database_url(get("DATABASE_URL"), instance_path),
        "BASE_URL": base_url,
        "SESSION_COOKIE_SECURE": is_https,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PREFERRED_URL_SCHEME": parts.scheme,
        "MAIL_BACKEND": mail_backend,
        "MAIL_OUTBOX_DIR": get("MAIL_OUTBOX_DIR", str(Path(instance_path) / "outbox")),
        "SMTP_HOST": get("SMTP_HOST", "localhost"),
        "SMTP_PORT": _int("SMTP_PORT", get("SMTP_PORT", "25"), 1, 65535),
        "SMTP_USERNAME": get("SMTP_USERNAME"),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        "SMTP_SECURITY": _choice(
            "SMTP_SECURITY", get("SMTP_SECURITY", "none"), ("none", "starttls", "ssl")
        ),
        "SMTP_TIMEOUT_SECONDS": _int("SMTP_TIMEOUT_SECONDS", get("SMTP_TIMEOUT_SECONDS", "30"),
                                     1, 600),
        "MAIL_FROM": _email("MAIL_FROM", get("MAIL_FROM", "forum@example.org")),
        "MAIL_FROM_NAME": get("MAIL_FROM_NAME", "Forum Sign-up"),
        # MAIL FROM (the Return-Path): where bounces go. Set explicitly, it wins; else the mailbox
        # that is read (REPLIES_EMAIL), so that bounces reach it; else MAIL_FROM.
        "SMTP_ENVELOPE_FROM": _email("SMTP_ENVELOPE_FROM",
                                     get("SMTP_ENVELOPE_FROM", replies_email or get(
                                         "MAIL_FROM", "forum@example.org"))),
        # The mailbox read over IMAP (calendar replies, bounces): the invites' ORGANIZER.
        "REPLIES_EMAIL": replies_email,
        "ORGANISER_EMAIL": _email("ORGANISER_EMAIL", get("ORGANISER_EMAIL", "forum@example.org")),
        "SCHEDULER": _choice("SCHEDULER", get("SCHEDULER", "embedded"), ("embedded", "off")),
        "DISPATCH_INTERVAL_SECONDS": _int(
            "DISPATCH_INTERVAL_SECONDS", get("DISPATCH_INTERVAL_SECONDS", "5"), 1, 3600
        ),
        "DISPATCH_BATCH_SIZE": _int("DISPATCH_BATCH_SIZE", get("DISPATCH_BATCH_SIZE", "100"),
                                    1, 10000),
        "DISPATCH_MARK_BATCH": _int("DISPATCH_MARK_BATCH", get("DISPATCH_MARK_BATCH", "1"),
                                    1, 1000),
        "CLAIM_LEASE_SECONDS": _int("CLAIM_LEASE_SECONDS", get("CLAIM_LEASE_SECONDS", "300"),
                                    10, 86400),
        "DATABASE_LOCK_TIMEOUT_SECONDS": _int(
            "DATABASE_LOCK_TIMEOUT_SECONDS", get("DATABASE_LOCK_TIMEOUT_SECONDS", "10"), 1, 600),
        # psycopg counts anything under 2 s as 2 s.
        "DATABASE_CONNECT_TIMEOUT_SECONDS": _int(
            "DATABASE_CONNECT_TIMEOUT_SECONDS", get("DATABASE_CONNECT_TIMEOUT_SECONDS", "3"),
            2, 60),
        "DATABASE_POOL_TIMEOUT_SECONDS": _int(
            "DATABASE_POOL_TIMEOUT_SECONDS", get("DATABASE_POOL_TIMEOUT_SECONDS", "5"), 1, 60),
        "DATABASE_STATEMENT_TIMEOUT_SECONDS": _int(
            "DATABASE_STATEMENT_TIMEOUT_SECONDS", get("DATABASE_STATEMENT_TIMEOUT_SECONDS", "30"),
            0, 3600),
        "DATABASE_IDLE_TRANSACTION_TIMEOUT_SECONDS": _int(
            "DATABASE_IDLE_TRANSACTION_TIMEOUT_SECONDS",
            get("DATABASE_IDLE_TRANSACTION_TIMEOUT_SECONDS", "60"), 0, 3600),
        "DATABASE_KEEPALIVE_SECONDS": _int(
            "DATABASE_KEEPALIVE_SECONDS", get("DATABASE_KEEPALIVE_SECONDS", "30"), 1, 3600),
        **_imap_settings(env, get),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", get("RATELIMIT_ENABLED", "true")),
        "RATELIMIT_STORAGE_URI": get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_SIGNUP_PER_IP": get("RATELIMIT_SIGNUP_PER_IP", "300 per hour"),
        "RATELIMIT_SIGNUP_PER_EMAIL": get("RATELIMIT_SIGNUP_PER_EMAIL", "10 per hour"),
        "RATELIMIT_MY_LINK_PER_IP": get("RATELIMIT_MY_LINK_PER_IP", "30 per hour"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "CORS_ORIGINS": _origins(get("CORS_ORIGINS")),
        "PROGRAMME_NAME": get("PROGRAMME_NAME", "Virtual Forum"),
        # Who runs the service, as the privacy notice names them (the data controller).
        "SERVICE_OPERATOR": get("SERVICE_OPERATOR", "The Virtual Forum organisers"),
        "PROGRAMME_MAX_ROWS": _int("PROGRAMME_MAX_ROWS", get("PROGRAMME_MAX_ROWS", "5000"),
                                   1, 1_000_000),
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", get("TRUSTED_PROXIES", "0"), 0, 5),
        "ORGANISER_IDLE_MINUTES": _int("ORGANISER_IDLE_MINUTES",
                                       get("ORGANISER_IDLE_MINUTES", "60"), 1, 24 * 60),
        "PASSWORD_HASH_METHOD": get("PASSWORD_HASH_METHOD", "scrypt:131072:8:1"),
        # Sign-in (organisers/throttle.py): every attempt per IP; failures per address and IP;
        # failures per address from browsers that never signed in to it, looser than one IP can
        # reach, so that only an attack from many IPs locks new browsers out.
        "RATELIMIT_LOGIN_PER_IP": get("RATELIMIT_LOGIN_PER_IP", "60 per hour"),
        "RATELIMIT_LOGIN_PER_ADDRESS_IP": get("RATELIMIT_LOGIN_PER_ADDRESS_IP",
                                              "10 per 15 minutes"),
        "RATELIMIT_LOGIN_PER_ADDRESS": get("RATELIMIT_LOGIN_PER_ADDRESS", "100 per hour"),
        "REMINDER_OFFSETS": _offsets(get("REMINDER_OFFSETS", "7d,1d,1h")),
        "RETENTION_DAYS": _int("RETENTION_DAYS", get("RETENTION_DAYS", "90"), 1, 3650),
        "PRIVACY_NOTICE_VERSION": get("PRIVACY_NOTICE_VERSION", "2025-06"),
        "EMAIL_CHECK_DELIVERABILITY": _bool(
            "EMAIL_CHECK_DELIVERABILITY", get("EMAIL_CHECK_DELIVERABILITY", "false")
        ),
        # A sign-up form is a few kilobytes; anything far larger is not one.
        "MAX_CONTENT_LENGTH": _int("MAX_FORM_BYTES", get("MAX_FORM_BYTES", "65536"),
                                   1024, 100 * 1024 * 1024),
        # The CSRF token lives as long as the session cookie, so a form left open is still sent.
        "WTF_CSRF_TIME_LIMIT": None,
        # The token and the SameSite=Lax cookie guard every form; a Referer check on https would
        # refuse people behind proxies that strip it, and the manage pages send none.
        "WTF_CSRF_SSL_STRICT": False,
        # A rate-limit store that is down (Redis) must not turn sign-ups into errors.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    }
    # One message may take a few SMTP time-outs (connect, data); the dispatcher stops its batch
    # at half the lease, so the lease must outlast that by far or another worker re-sends.
    if settings["CLAIM_LEASE_SECONDS"] < 6 * settings["SMTP_TIMEOUT_SECONDS"]:
        raise ConfigError("CLAIM_LEASE_SECONDS must be at least 6 × SMTP_TIMEOUT_SECONDS")
    if settings["SMTP_USERNAME"]:
        _refuse_password_in_clear("SMTP", settings["SMTP_HOST"], settings["SMTP_SECURITY"])
    if not re.fullmatch(r"scrypt(:\d+:\d+:\d+)?|pbkdf2:sha256(:\d+)?",
                        settings["PASSWORD_HASH_METHOD"]):
        raise ConfigError("PASSWORD_HASH_METHOD must be like scrypt:131072:8:1")
    from limits import parse

    for name in ("RATELIMIT_SIGNUP_PER_IP", "RATELIMIT_SIGNUP_PER_EMAIL",
                 "RATELIMIT_MY_LINK_PER_IP", "RATELIMIT_LOGIN_PER_ADDRESS",
                 "RATELIMIT_LOGIN_PER_ADDRESS_IP", "RATELIMIT_LOGIN_PER_IP"):
        try:
            parse(settings[name])
        except ValueError:
            raise ConfigError(
                f"{name} must read like '10 per hour', not {settings[name]!r}"
            ) from None
    if urlsplit(settings["RATELIMIT_STORAGE_URI"]).scheme not in {
        "memory", "redis", "rediss", "redis+unix", "memcached"
    }:
        raise ConfigError("RATELIMIT_STORAGE_URI must be memory:// or redis://host:port")
    from notifications import dkim

    try:  # the key is read once, here: one that can't be read stops start-up
        settings.update(dkim.settings(get, settings["MAIL_FROM"]))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return settings


SETTING_NAMES = {
    "SECRET_KEY", "DATABASE_URL", "BASE_URL", "MAIL_BACKEND", "MAIL_OUTBOX_DIR", "SMTP_HOST",
    "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_SECURITY", "SMTP_TIMEOUT_SECONDS",
    "MAIL_FROM", "MAIL_FROM_NAME", "ORGANISER_EMAIL", "SCHEDULER", "DISPATCH_INTERVAL_SECONDS",
    "DISPATCH_BATCH_SIZE", "DISPATCH_MARK_BATCH", "CLAIM_LEASE_SECONDS", "RATELIMIT_ENABLED",
    "RATELIMIT_STORAGE_URI", "CORS_ORIGINS",
    "RATELIMIT_SIGNUP_PER_IP", "RATELIMIT_SIGNUP_PER_EMAIL", "RATELIMIT_MY_LINK_PER_IP",
    "PRIVACY_NOTICE_VERSION",
    "PROGRAMME_NAME", "TRUSTED_PROXIES", "REMINDER_OFFSETS", "RETENTION_DAYS",
    "ORGANISER_IDLE_MINUTES", "PASSWORD_HASH_METHOD", "RATELIMIT_LOGIN_PER_ADDRESS",
    "RATELIMIT_LOGIN_PER_IP", "RATELIMIT_LOGIN_PER_ADDRESS_IP",
    "EMAIL_CHECK_DELIVERABILITY", "MAX_FORM_BYTES",
    "SECRET_KEY_FALLBACKS", "PROGRAMME_MAX_ROWS", "SERVICE_OPERATOR",
    "DATABASE_LOCK_TIMEOUT_SECONDS", "DATABASE_CONNECT_TIMEOUT_SECONDS",
    "DATABASE_POOL_TIMEOUT_SECONDS", "DATABASE_STATEMENT_TIMEOUT_SECONDS",
    "DATABASE_IDLE_TRANSACTION_TIMEOUT_SECONDS", "DATABASE_KEEPALIVE_SECONDS",
    "SMTP_ENVELOPE_FROM", "DKIM_PRIVATE_KEY_PATH", "DKIM_SELECTOR", "DKIM_DOMAIN",
    "IMAP_HOST", "IMAP_PORT", "IMAP_USERNAME", "IMAP_PASSWORD", "IMAP_SECURITY", "IMAP_CA_FILE",
    "IMAP_FOLDER", "IMAP_DONE_FOLDER", "REPLIES_EMAIL", "MAILBOX_INTERVAL_SECONDS",
}
