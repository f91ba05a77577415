"""Text that jobs produce and people read: made storable, printable and bounded.

What a job returns or raises is data from anywhere: a file name decoded with
``surrogateescape`` holds lone surrogates (no database can store them as UTF-8), a
NUL byte cannot be stored in a PostgreSQL text column, a control character written
to a terminal can set the clipboard (OSC 52) or fake a link (OSC 8). The rules for
each way out are here, once:

- ``storable``: what may be written to either database; the characters neither can
  hold are written as visible escapes (``\\udce9``, ``\\x00``), so the rest of the
  text stays readable and nothing fails;
- ``printable``: what may be written to a terminal; control characters are escaped;
- ``displayable``: what a page may hold (valid Unicode, no NUL);
- ``bounded``: at most a given number of characters, with a marker saying how many
  there were.
"""

from __future__ import annotations

import re

# lone surrogates (U+D800-U+DFFF) cannot be encoded as UTF-8; NUL cannot be stored in
# PostgreSQL text
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides
# and isolates that reorder what a terminal shows (the "Trojan Source" characters)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_CONTROL_ONE_LINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def storable(text: str) -> str:
    """``text`` with lone surrogates and NUL written as escapes: any database stores it."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(_escape, text)


def printable(text: str, one_line: bool = False) -> str:
    """``text`` safe for a terminal: control characters (and, with ``one_line``, line
    breaks and tabs) written as escapes."""
    pattern = _CONTROL_ONE_LINE if one_line else _CONTROL
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def displayable(text: str) -> str:
    """``text`` a web page can hold: lone surrogates and NUL escaped."""
    return storable(text)


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how long it was."""
    if len(text) <= limit:
        return text
    marker = f"\n[... truncated: {len(text)} characters in all]"
    return text[: max(0, limit - len(marker))] + marker


def describe(value: object, limit: int = 200) -> str:
    """A value in one short line for a message, whatever it is (``repr`` may fail)."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<{type(value).__name__} whose repr() raised {type(exc).__name__}>"
    text = printable(storable(text), one_line=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
