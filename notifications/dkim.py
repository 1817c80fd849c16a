"""DKIM (RFC 6376): every outgoing message signed with the key DKIM_PRIVATE_KEY_PATH names, and
the DNS TXT record that publishes its public half (`flask dkim-record`).

dkimpy signs and verifies; it carries its own RSA and ASN.1 code, so no other cryptography
library is needed: the public key's DER is written here from the private key's numbers."""

import base64
import re

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

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
    try:
        with open(path, "rb") as f:
            key = f.read()
    except OSError as exc:
        raise ValueError(f"can't be read: {exc.strerror or exc}") from None
    try:
        parse_pem_private_key(key)
    except (UnparsableKeyError, ValueError, IndexError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"is not an RSA private key in PEM form ({reason})") from None
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


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        head = bytes([length])
    else:
        size = length.to_bytes((length.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(size)]) + size
    return bytes([tag]) + head + content


def _integer(value: int) -> bytes:
    # Two's complement: a leading zero octet keeps a high first bit from reading as negative.
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


# AlgorithmIdentifier: rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
_RSA_ALGORITHM = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + _der(0x05, b""))


def public_key_der(key: bytes) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a PEM RSA private key, as DKIM's p= tag carries it."""
    numbers = parse_pem_private_key(key)
    rsa_public = _der(0x30, _integer(numbers["modulus"]) + _integer(numbers["publicExponent"]))
    return _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\x00" + rsa_public))


def record_value(key: bytes) -> str:
    """The TXT record's text: v=DKIM1; k=rsa; p=<base64 of the public key>."""
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public_key_der(key)).decode('ascii')}"


def record(key: bytes, selector: str, domain: str) -> str:
    """The zone-file line to publish: the value split into strings of at most 255 octets."""
    value = record_value(key)
    parts = [value[i:i + TXT_STRING] for i in range(0, len(value), TXT_STRING)]
    strings = " ".join(f'"{part}"' for part in parts)
    return f"{selector}._domainkey.{domain}. IN TXT {strings}"
