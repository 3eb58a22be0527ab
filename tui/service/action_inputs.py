"""Checking what a user hands an action: a batch label, or a JSONL request file."""

from __future__ import annotations

from pathlib import Path

from tui.core.requests import ParsedRequests, RequestProblem, parse_request_chunks
from tui.core.sanitize import UNSAFE_CHARS

MAX_LABEL_CHARS = 120
READ_CHUNK = 1 << 20


def clean_label(text: str | None) -> str | None:
    """A label as stored: one line, trimmed, at most MAX_LABEL_CHARS; None or "" clears it.

    Raises ValueError on control characters (a label is shown in the list as is).
    """
    if text is None:
        return None
    stripped = " ".join(text.split())
    if any(char in UNSAFE_CHARS for char in stripped):
        raise ValueError("a label may not contain control characters")
    if len(stripped) > MAX_LABEL_CHARS:
        raise ValueError(f"a label may be at most {MAX_LABEL_CHARS} characters")
    return stripped or None


def read_request_file(path: Path) -> ParsedRequests:
    """Parse a JSONL request file streaming, chunk by chunk (blocking: run it in a thread)."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            return parse_request_chunks(iter(lambda: handle.read(READ_CHUNK), b""), source)
    except OSError as exc:
        problem = RequestProblem(0, "", f"cannot read the file: {exc.strerror or exc}")
        return ParsedRequests(source, [], [problem], 1, 0)
