"""Result writers: JSONL byte-exact, CSV columns and escaping pinned by golden files."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.cli.conftest import golden
from tui.commands.formats import (
    CSV_COLUMNS,
    Column,
    escape_json_controls,
    format_row,
    result_fields,
    table_lines,
    write_csv,
    write_jsonl,
    write_table,
)
from tui.core.sanitize import UNSAFE_CHARS


def succeeded(custom_id: str, *texts: str, usage: dict[str, Any] | None = None,
              stop: str = "end_turn", extra_blocks: list[dict[str, Any]] | None = None) -> bytes:
    content: list[dict[str, Any]] = [{"type": "text", "text": text} for text in texts]
    content += extra_blocks or []
    message: dict[str, Any] = {
        "id": f"msg_{custom_id}", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-6", "content": content, "stop_reason": stop,
        "stop_sequence": None,
    }
    if usage is not None:
        message["usage"] = usage
    return orjson.dumps({"custom_id": custom_id,
                         "result": {"type": "succeeded", "message": message}})


def errored(custom_id: str, error_type: str, message: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": "errored", "error": {
        "type": "error", "error": {"type": error_type, "message": message}, "request_id": None}}})


def plain(custom_id: str, kind: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": kind}})


USAGE = {"input_tokens": 1716, "output_tokens": 78, "cache_creation_input_tokens": 12,
         "cache_read_input_tokens": 900, "service_tier": "batch"}

# Every awkward case the CSV has to survive, as the API would send it.
FIXTURE: list[bytes] = [
    succeeded("comma-quote-newline", 'He said "hi", then\nleft.', usage=USAGE,
              extra_blocks=[{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]),
    succeeded("two-blocks", "first block", "second, block", usage={"input_tokens": 5,
                                                                   "output_tokens": 7}),
    succeeded("unicode-no-usage", "naïve café 🎉 漢字", stop="max_tokens"),
    succeeded("crlf-and-formula", "=SUM(A1:A2)\r\nline two"),
    succeeded("hostile", "\x1b[31mALERT\x1b[0m \x1b]52;c;cm0=\x07 \u202etxt.exe"),
    errored("bad-request", "invalid_request_error", 'max_tokens: 100000 > 64000, "too many"\nfix'),
    errored("overloaded", "overloaded_error", "Overloaded"),
    plain("was-canceled", "canceled"),
    plain("was-expired", "expired"),
    plain("future-type", "weird"),
    b'{"custom_id":"cut-line","result":{"type":"succ',
]


def fixture_bytes() -> bytes:
    return b"".join(line + b"\n" for line in FIXTURE)


def test_jsonl_writes_the_lines_unchanged() -> None:
    out = io.BytesIO()
    assert write_jsonl(iter(FIXTURE), out) == len(FIXTURE)
    assert out.getvalue() == fixture_bytes()


def test_jsonl_keeps_existing_newlines() -> None:
    out = io.BytesIO()
    write_jsonl([line + b"\n" for line in FIXTURE], out)
    assert out.getvalue() == fixture_bytes()


def test_csv_golden() -> None:
    out = io.StringIO()
    assert write_csv(iter(FIXTURE), out) == len(FIXTURE)
    golden("results.csv", out.getvalue())


def test_csv_reads_back_exactly() -> None:
    out = io.StringIO()
    write_csv(iter(FIXTURE), out)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {row[0]: dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]}
    first = by_id["comma-quote-newline"]
    assert first["text"] == 'He said "hi", then\nleft.'
    assert (first["input_tokens"], first["cache_read_input_tokens"]) == ("1716", "900")
    assert by_id["two-blocks"]["text"] == "first block\nsecond, block"
    assert by_id["crlf-and-formula"]["text"] == "=SUM(A1:A2)\r\nline two"
    # The full message, not the index's truncated one, and the nested error type.
    assert by_id["bad-request"]["error_type"] == "invalid_request_error"
    assert by_id["bad-request"]["error_message"].endswith('"too many"\nfix')
    assert by_id["cut-line"]["type"] == "malformed"
    assert by_id["future-type"]["type"] == "weird"
    assert by_id["was-expired"]["text"] == ""


def test_csv_inert_for_a_terminal() -> None:
    out = io.StringIO()
    write_csv(iter(FIXTURE), out, inert=True)
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    assert "␛[31mALERT" in out.getvalue()


def test_table_golden_and_inert() -> None:
    out = io.StringIO()
    assert write_table(iter(FIXTURE), out, width=120) == len(FIXTURE)
    text = out.getvalue()
    golden("results_table.txt", text)
    assert not any(char in UNSAFE_CHARS for char in text.replace("\n", ""))
    assert all(len(line) <= 120 for line in text.splitlines())


def test_table_is_streaming() -> None:
    def endless() -> Any:
        n = 0
        while True:
            n += 1
            yield plain(f"row-{n}", "expired")

    lines = table_lines(endless())
    assert next(lines).startswith("CUSTOM_ID")
    assert next(lines).startswith("row-1 ")


@given(st.text())
def test_any_text_survives_csv(text: str) -> None:
    line = succeeded("x", text)
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return  # lone surrogates cannot come from the API
    out = io.StringIO()
    write_csv([line], out)
    row = list(csv.reader(io.StringIO(out.getvalue(), newline="")))[1]
    assert row[CSV_COLUMNS.index("text")] == text


@given(st.lists(st.text(), min_size=2, max_size=2))
def test_format_row_is_one_inert_line(cells: list[str]) -> None:
    columns = (Column("A", 8), Column("B", 5, "right"))
    text = format_row(cells, columns)
    assert "\n" not in text
    assert not any(char in UNSAFE_CHARS for char in text)


def test_result_fields_order_matches_columns() -> None:
    assert len(result_fields(FIXTURE[0])) == len(CSV_COLUMNS)


TERMINAL_ACTIVE = (
    [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\x7f"]
    + [chr(c) for c in range(0x80, 0xA0)]
    + ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
)


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
))
def test_escaped_json_is_equal_and_inert(value: Any) -> None:
    for option in (0, orjson.OPT_INDENT_2):
        escaped = escape_json_controls(orjson.dumps(value, option=option))
        assert orjson.loads(escaped) == value
        text = escaped.decode()
        assert not any(char in text for char in TERMINAL_ACTIVE if char != "\n")


def test_every_terminal_active_character_is_escaped() -> None:
    escaped = escape_json_controls(orjson.dumps("".join(TERMINAL_ACTIVE))).decode()
    assert escaped.isascii() and orjson.loads(escaped) == "".join(TERMINAL_ACTIVE)
    assert "\\u202e" in escaped and "\\u009b" in escaped


def test_escaping_leaves_plain_json_as_it_is() -> None:
    data = orjson.dumps({"text": "héllo 中文 \u2010 \u00a0 emoji \U0001f600"})
    assert escape_json_controls(data) is data


def test_jsonl_inert_for_a_terminal() -> None:
    line = orjson.dumps({"t": "\u202eevil\x9b"}) + b"\n"
    out = io.BytesIO()
    write_jsonl([line, b'{"a":1}'], out, inert=True)
    assert out.getvalue() == b'{"t":"\\u202eevil\\u009b"}\n{"a":1}\n'
