"""Result writers for the CLI: JSONL byte-exact, CSV with stable columns, an inert text table.

Pure and streaming: raw result lines in, one at a time, to the stream given."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

import orjson

from tui.core.results import ERRORED, SUCCEEDED, parse_line
from tui.core.sanitize import safe_cell, safe_text, text_width

CSV_COLUMNS: tuple[str, ...] = (
    "custom_id", "type", "error_type", "error_message", "stop_reason", "model",
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    "text",
)
"""The CSV header: an API, append new columns at the end only."""

TEXT_JOINER = "\n"
"""Between the text blocks of one message in the `text` column."""

# Characters a terminal acts on that a JSON encoder may leave raw inside strings: C0 (but
# the tab, newline and carriage return JSON allows between tokens) and DEL, C1 (U+0080-009F),
# bidi marks, embeddings, overrides and isolates, and the line/paragraph separators. In UTF-8
# each starts with a lead byte, so a match never splits a character.
_TERMINAL_UNSAFE = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]|\xd8\x9c"
    rb"|\xe2\x80[\x8e\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]"
)


def _json_escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode("utf-8"))


def escape_json_controls(data: bytes) -> bytes:
    """UTF-8 JSON with every terminal-active character escaped as ``\\uXXXX``: the same JSON
    value, inert on a terminal. Unchanged (the same object) when there is none."""
    if _TERMINAL_UNSAFE.search(data) is None:
        return data
    return _TERMINAL_UNSAFE.sub(_json_escape, data)


Align = Literal["left", "right"]
Cell = str | int | None


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a plain-text table: header, width in cells, alignment."""

    label: str
    width: int
    align: Align = "left"


# -- one result line -------------------------------------------------------------------------


def message_text(body: Any) -> str | None:
    """The text blocks of a succeeded result's message, joined; None when it has none."""
    try:
        content = body["result"]["message"]["content"]
    except (KeyError, TypeError):
        return None
    if not isinstance(content, list):
        return None
    texts = [
        block["text"] for block in content
        if isinstance(block, dict) and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ]
    return TEXT_JOINER.join(texts) if texts else None


def error_message(body: Any) -> str | None:
    """The full message of an errored result (the nested error, as the index reads it)."""
    try:
        message = body["result"]["error"]["error"]["message"]
    except (KeyError, TypeError):
        return None
    return message if isinstance(message, str) else None


def result_fields(line: bytes) -> tuple[Cell, ...]:
    """The CSV_COLUMNS values of one raw result line (never raises).

    The index fields come from the same parser the results index uses, so the CSV and the
    app agree on every type; the full error message and the text need the body itself.
    """
    (custom_id, kind, error_type, message, stop_reason, model, tokens_in, tokens_out,
     cache_write, cache_read, _tier) = parse_line(line)
    text: str | None = None
    if kind in (SUCCEEDED, ERRORED):
        body = orjson.loads(line)  # parse_line accepted it, so it is valid JSON
        if kind == SUCCEEDED:
            text = message_text(body)
        else:
            message = error_message(body) or message
    return (custom_id, kind, error_type, message, stop_reason, model, tokens_in, tokens_out,
            cache_write, cache_read, text)


# -- writers ---------------------------------------------------------------------------------


def write_jsonl(lines: Iterable[bytes], out: IO[bytes], *, inert: bool = False) -> int:
    """Write the lines unchanged (each ends in a newline); returns how many. With `inert`
    (a terminal) control and bidi characters are escaped as ``\\uXXXX``: equal JSON."""
    count = 0
    for line in lines:
        if inert:
            line = escape_json_controls(line.rstrip(b"\n"))
        out.write(line if line.endswith(b"\n") else line + b"\n")
        count += 1
    return count


def _csv_value(value: Cell, inert: bool) -> str | int:
    if value is None:
        return ""
    if inert and isinstance(value, str):
        return safe_text(value)
    return value


def write_csv(lines: Iterable[bytes], out: IO[str], *, inert: bool = False) -> int:
    """Header plus one row per line, RFC 4180: CRLF row ends, and every field holding a comma,
    a quote, CR or LF is quoted (a lone CR in model text included); returns the rows.

    `inert` makes control characters visible (for a terminal); files keep the exact text.
    """
    # With a bare "\n" terminator the csv module would leave a lone "\r" unquoted.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for line in lines:
        writer.writerow([_csv_value(value, inert) for value in result_fields(line)])
        count += 1
    return count


def format_row(cells: Sequence[str], columns: Sequence[Column], gap: str = "  ") -> str:
    """One table line: each cell made safe, cut to its column and padded; no trailing blanks."""
    parts: list[str] = []
    for cell, column in zip(cells, columns, strict=True):
        text = safe_cell(cell, column.width)
        pad = " " * max(0, column.width - text_width(text))
        parts.append(pad + text if column.align == "right" else text + pad)
    return gap.join(parts).rstrip()


RESULT_COLUMNS: tuple[Column, ...] = (
    Column("CUSTOM_ID", 30),
    Column("TYPE", 9),
    Column("ERROR_TYPE", 21),
    Column("STOP", 10),
    Column("IN", 7, "right"),
    Column("OUT", 6, "right"),
)


def result_table_columns(width: int) -> tuple[Column, ...]:
    """RESULT_COLUMNS plus a last column taking what is left of `width` (at least 20)."""
    used = sum(column.width + 2 for column in RESULT_COLUMNS)
    return (*RESULT_COLUMNS, Column("TEXT / ERROR", max(20, width - used)))


def _number(value: Cell) -> str:
    return f"{value:,}" if isinstance(value, int) else ""


def result_cells(line: bytes) -> list[str]:
    """The cells of one result in the table: the text, or the error message when it failed."""
    (custom_id, kind, error_type, message, stop, _model, tokens_in, tokens_out,
     _cache_write, _cache_read, text) = result_fields(line)
    return [
        str(custom_id), str(kind), str(error_type or ""), str(stop or ""),
        _number(tokens_in), _number(tokens_out), str(text if text is not None else message or ""),
    ]


def table_lines(lines: Iterable[bytes], width: int = 120) -> Iterator[str]:
    """The header, then one inert line per result, with fixed widths (no look-ahead)."""
    columns = result_table_columns(width)
    yield format_row([column.label for column in columns], columns)
    for line in lines:
        yield format_row(result_cells(line), columns)


def write_table(lines: Iterable[bytes], out: IO[str], *, width: int = 120) -> int:
    """Write `table_lines`; returns the number of results."""
    written = 0
    for text in table_lines(lines, width):
        out.write(text + "\n")
        written += 1
    return written - 1  # the header is not a result
