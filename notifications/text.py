"""Plain text the organisers write, made safe for an email: limits on what they may send, and
the one rule that turns their text into HTML (paragraphs and http(s) links, nothing else)."""

import re

from markupsafe import Markup, escape

SUBJECT_MAX = 200
TEXT_MAX = 10_000

# A link ends at white space or at a character that can't be part of it unescaped; the
# punctuation ending a sentence right after it is not part of it either.
_URL = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}»、。）"
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")


def normalise(text: str) -> str:
    """Line breaks as LF, trailing blanks and surrounding blank lines gone."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def has_line_break(text: str) -> bool:
    """Whether the text holds a character that would end or split a header line."""
    return any(ch in text for ch in "\r\n\0\x0b\x0c\x85\u2028\u2029")


def _split_url(candidate: str) -> tuple[str, str]:
    """The link and the punctuation after it that belongs to the sentence."""
    url = candidate
    while url and url[-1] in _TRAILING:
        # A closing bracket stays when the link itself opened it (a Wikipedia-style link).
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url, candidate[len(url):]


def _linked(line: str) -> Markup:
    parts, position = [], 0
    for match in _URL.finditer(line):
        url, rest = _split_url(match.group(0))
        if len(url) <= len("https://"):
            continue
        parts.append(escape(line[position:match.start()]))
        parts.append(Markup('<a href="{0}">{0}</a>').format(url))
        parts.append(escape(rest))
        position = match.end()
    parts.append(escape(line[position:]))
    return Markup("").join(parts)


def to_html(text: str) -> Markup:
    """The text as HTML: paragraphs at blank lines, line breaks kept, http(s) URLs as links,
    every other character escaped, so nothing typed becomes markup."""
    paragraphs = [p for p in _BLANK_LINE.split(normalise(text)) if p.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(_linked(line) for line in p.split("\n")))
        for p in paragraphs
    )
