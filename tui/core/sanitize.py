"""Untrusted text made inert: terminal controls and bidi overrides shown, never executed."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

ELLIPSIS = "…"
NEWLINE_MARK = "⏎"
ZERO_WIDTH_SPACE = "\u200b"

# Everything a terminal or a text layout engine would act on rather than print:
# C0 controls, DEL, C1 controls (0x9B alone is a CSI introducer), bidi embeddings, overrides,
# isolates and marks, the Unicode line/paragraph separators, and lone surrogates (which
# cannot even be encoded for output).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_OTHER_UNSAFE = f"\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff"
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHER_UNSAFE}]")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_RICH_TAG = re.compile(r"\[[a-z#/@][^[]*?]")
_BACKSLASHES_BRACKET = re.compile(r"(\\*)\[")

UNSAFE_CHARS: frozenset[str] = frozenset(
    [chr(c) for c in range(0x20)]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)


def visible(char: str) -> str:
    """The printable stand-in for one unsafe character.

    C0 controls and DEL become their Unicode control pictures (ESC → ␛, BEL → ␇, DEL → ␡);
    anything else (C1, bidi, separators, surrogates) becomes a code point marker ⟨U+202E⟩.
    """
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"⟨U+{code:04X}⟩"


def _visible_match(match: re.Match[str]) -> str:
    return visible(match.group())


def safe_text(text: str) -> str:
    """`text` with every terminal-interpreted character made visible; newlines and tabs kept.

    An escape sequence (CSI, OSC incl. OSC 52 clipboard writes and title changes, DCS, APC,
    PM) cannot start without ESC or a C1 introducer, so showing those characters makes the
    whole sequence inert and readable: ``\\x1b]52;c;…\\x07`` is shown as ``␛]52;c;…␇``.
    CRLF is a line ending and becomes ``\\n``; a lone CR (which would overwrite the line)
    is shown as ␍.
    """
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _UNSAFE_KEEP_LINES.sub(_visible_match, text)


@lru_cache(maxsize=4096)
def char_width(char: str) -> int:
    """Terminal cells taken by one (safe) character: 0 for combining marks, 2 for wide."""
    if unicodedata.category(char) in ("Mn", "Me") or char in _ZERO_WIDTH:
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


def text_width(text: str) -> int:
    """Terminal cells taken by already-safe `text` on one line."""
    if text.isascii():
        return len(text)
    return sum(char_width(char) for char in text)


def _cell_piece(char: str) -> str:
    if char == "\n":
        return NEWLINE_MARK
    if char == "\t":
        return " "
    if char in UNSAFE_CHARS or "\ud800" <= char <= "\udfff":
        return visible(char)
    return char


def safe_cell(text: str, width: int) -> str:
    """`text` as one safe line of at most `width` cells, cut with … when it does not fit.

    Newlines become ⏎ and tabs a space. Only the first ``4 × width`` characters are
    examined, so a multi-megabyte value costs as much as a short one.
    """
    if width <= 0:
        return ""
    if len(text) <= width and text.isascii() and text.isprintable():
        return text
    limit = 4 * width + 16
    head = text[:limit]
    cut_input = len(text) > limit
    if "\r\n" in head:
        head = head.replace("\r\n", "\n")
    pieces: list[str] = []
    used = 0
    for char in head:
        piece = _cell_piece(char)
        cells = char_width(piece) if len(piece) == 1 else text_width(piece)
        if used + cells > width:
            return _ellipsize(pieces, used, width)
        pieces.append(piece)
        used += cells
    if cut_input:
        return _ellipsize(pieces, used, width)
    return "".join(pieces)


def _ellipsize(pieces: list[str], used: int, width: int) -> str:
    """Drop trailing pieces until … fits in `width` cells, then append it."""
    while pieces and used + 1 > width:
        last = pieces.pop()
        used -= char_width(last) if len(last) == 1 else text_width(last)
    return "".join(pieces) + ELLIPSIS


def escape_markup(text: str) -> str:
    """`safe_text` made literal for Textual content markup (``Static``, ``Label``, ``notify``).

    Every ``[`` is escaped, since Textual reads any unescaped one as a tag. Textual cannot
    express a backslash right before a tag, so a trailing backslash gets a zero-width space
    after it: the caller's next ``[/tag]`` stays a tag. Prefer ``Content``/``Text`` objects,
    which need no escaping at all.
    """
    return _guard_trailing_backslash(safe_text(text).replace("[", "\\["))


def escape_rich_markup(text: str) -> str:
    """`safe_text` made literal for Rich console markup (``Text.from_markup``).

    Rich reads ``\\[`` as ``[`` in plain text but halves a backslash run before a tag-like
    ``[name]``; its own ``escape`` only handles the second case. Here each bracket is escaped
    and the backslashes before it are kept by the rule that applies at that spot.
    """
    safe = safe_text(text)

    def _escape(match: re.Match[str]) -> str:
        backslashes = match.group(1)
        if _RICH_TAG.match(safe, match.end() - 1):
            return f"{backslashes}{backslashes}\\["
        return f"{backslashes}\\["

    return _guard_trailing_backslash(_BACKSLASHES_BRACKET.sub(_escape, safe))


def _guard_trailing_backslash(escaped: str) -> str:
    return escaped + ZERO_WIDTH_SPACE if escaped.endswith("\\") else escaped


def has_unsafe(text: str) -> bool:
    """True when `text` holds anything `safe_text` would change (other than CRLF)."""
    return _UNSAFE_KEEP_LINES.search(text) is not None
