"""What typed text may hold: one rule for the sign-up form, the programme and the console."""

import unicodedata

# Invisible characters that reorder text: a name or title could then read differently than it is.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LINE_SEPARATORS = frozenset("\u2028\u2029")
LINE_BREAKS = frozenset("\r\n") | LINE_SEPARATORS


def clean_text(value: str | None) -> str:
    """Trim and NFC-normalise a typed value (typed content itself is kept as written)."""
    return unicodedata.normalize("NFC", (value or "").strip())


def is_unicode(value) -> bool:
    """Whether the value is a string of Unicode characters: not a lone surrogate, which JSON's
    \\ud800 escapes can carry and which no database or email can store."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_control(ch: str) -> bool:
    """A character that has no place in a line of text: a control character (a line break,
    NUL…), a line or paragraph separator, or one that reorders text."""
    return unicodedata.category(ch) == "Cc" or ch in LINE_SEPARATORS or ch in BIDI_CONTROLS


def first_control(text: str, allowed: str = "") -> str | None:
    """The first character of the text that is_control() refuses, `allowed` ones apart."""
    return next((ch for ch in text if is_control(ch) and ch not in allowed), None)


def without_controls(text: str) -> str:
    """The text with every character is_control() refuses left out, for showing a name we
    did not choose (an uploaded file's) rather than refusing it."""
    return "".join(ch for ch in text if not is_control(ch))
