"""DKIM (RFC 6376): every outgoing message signed with the key DKIM_PRIVATE_KEY_PATH names, and
the DNS TXT record that publishes its public half (`flask dkim-record`).

dkimpy signs and verifies; the cryptography package reads the key and writes its public half."""

import base64
import re

# dkimpy and cryptography are imported where a key is read or a message signed: a process that
# signs nothing (no key set, or a command that sends no mail) never loads them.

# Signed when present (dkimpy signs only the listed headers a message has). From must be one.
SIGNED_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"Reply-To",
                  b"MIME-Version", b"Content-Type", b"List-Unsubscribe",
                  b"List-Unsubscribe-Post")
CANONICALIZE = (b"relaxed", b"relaxed")
# The selector when DKIM_SELECTOR is not set.
DEFAULT_SELECTOR = "forum"
# A DNS TXT record is made of strings of at most 255 octets each.
TXT_STRING = 255


def read_key(path: str) -> bytes:
    """The PEM private key at `path`, checked to be one dkimpy can sign with; ValueError with a
    one-line reason otherwise."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        with open(path, "rb") as f:
            key = f.read()
    except OSError as exc:
        raise ValueError(f"can't be read: {exc.strerror or exc}") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"is not a private key in PEM form without a password ({reason})"
                         ) from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("is not an RSA key (DKIM signs with rsa-sha256)")
    return key


_DNS_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9])?")


def settings(get, mail_from: str) -> dict:
    """DKIM's settings from the environment (`get(name, default)`); ValueError naming the
    setting for one that is wrong, or a key that can't be read."""
    key_path = get("DKIM_PRIVATE_KEY_PATH")
    key = None
    if key_path:
        try:
            key = read_key(key_path)
        except ValueError as exc:
            raise ValueError(f"DKIM_PRIVATE_KEY_PATH {key_path!r} {exc}") from None
    values = {
        "DKIM_PRIVATE_KEY_PATH": key_path,
        "DKIM_PRIVATE_KEY": key,
        "DKIM_SELECTOR": get("DKIM_SELECTOR", DEFAULT_SELECTOR),
        # MAIL_FROM's domain as it goes on the wire (IDNA), like the From header's.
        "DKIM_DOMAIN": get("DKIM_DOMAIN", _wire_domain(mail_from)).lower(),
    }
    for name in ("DKIM_SELECTOR", "DKIM_DOMAIN"):
        if not _DNS_NAME.fullmatch(values[name]):
            raise ValueError(f"{name} must be an ASCII DNS name, not {values[name]!r}")
    return values


def _wire_domain(address: str) -> str:
    from registration import addresses

    return addresses.parse(address, test_environment=True).wire.rpartition("@")[2]


def sign(data: bytes, key: bytes, selector: str, domain: str) -> bytes:
    """The message with its DKIM-Signature header put first: rsa-sha256, relaxed/relaxed."""
    import dkim

    signature = dkim.sign(data, selector.encode("ascii"), domain.encode("ascii"), key,
                          include_headers=list(SIGNED_HEADERS), canonicalize=CANONICALIZE,
                          linesep=b"\r\n")
    return signature + data


def sign_for(data: bytes, config) -> bytes:
    """Signed when a key is configured; as it was otherwise."""
    key = config.get("DKIM_PRIVATE_KEY")
    if not key:
        return data
    return sign(data, key, config["DKIM_SELECTOR"], config["DKIM_DOMAIN"])


def public_key_der(key: bytes) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a PEM RSA private key, as DKIM's p= tag carries it."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(key, password=None).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def record_value(key: bytes) -> str:
    """The TXT record's text: v=DKIM1; k=rsa; p=<base64 of the public key>."""
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public_key_der(key)).decode('ascii')}"


def record(key: bytes, selector: str, domain: str) -> str:
    """The zone-file line to publish: the value split into strings of at most 255 octets."""
    value = record_value(key)
    parts = [value[i:i + TXT_STRING] for i in range(0, len(value), TXT_STRING)]
    strings = " ".join(f'"{part}"' for part in parts)
    return f"{selector}._domainkey.{domain}. IN TXT {strings}"
