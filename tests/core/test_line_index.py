"""The strict decoder of indexed fields gives the lenient parser's row for every line."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core import line_index
from tui.core.line_index import fast_record, index_lines
from tui.core.results import MALFORMED, MAX_TOKENS, index_record

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.integers(MAX_TOKENS - 1, MAX_TOKENS + 2),
    st.integers(2**64 - 1, 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def sometimes(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's usual value, or anything at all (a wrong shape the fast path must refuse)."""
    return st.one_of(value, value, value, json_values)


counts = sometimes(st.integers(0, 10_000))
usage = st.fixed_dictionaries({}, optional={
    "input_tokens": counts,
    "output_tokens": counts,
    "cache_creation_input_tokens": counts,
    "cache_read_input_tokens": counts,
    "cache_creation": sometimes(st.fixed_dictionaries({}, optional={
        "ephemeral_5m_input_tokens": counts, "ephemeral_1h_input_tokens": counts,
    })),
    "service_tier": sometimes(st.sampled_from(["batch", "standard"])),
})
message = st.fixed_dictionaries({}, optional={
    "model": sometimes(st.sampled_from(["claude-haiku-4-5", "claude-sonnet-4-6"])),
    "stop_reason": sometimes(st.sampled_from(["end_turn", "max_tokens", "tool_use"])),
    "usage": sometimes(usage),
    "content": json_values,
})
error_body = st.fixed_dictionaries({}, optional={
    "type": sometimes(st.sampled_from(["overloaded_error", "invalid_request_error"])),
    "message": sometimes(st.text(max_size=300)),
})
result = st.fixed_dictionaries({}, optional={
    "type": sometimes(st.sampled_from(["succeeded", "errored", "canceled", "expired", "x", ""])),
    "message": sometimes(message),
    "error": sometimes(st.fixed_dictionaries({"type": st.just("error")},
                                             optional={"error": sometimes(error_body)})),
})
result_line = st.fixed_dictionaries({}, optional={
    "custom_id": sometimes(st.text(min_size=1, max_size=12)),
    "result": sometimes(result),
    "extra": json_values,
})


@st.composite
def raw_lines(draw: st.DrawFn) -> bytes:
    """A result line, well-formed or not, then perhaps cut, spliced or given a stray byte."""
    raw = json.dumps(draw(result_line), ensure_ascii=draw(st.booleans())).encode()
    damage = draw(st.sampled_from(["none", "none", "cut", "byte", "splice"]))
    at = draw(st.integers(0, len(raw)))
    if damage == "cut":
        raw = raw[:at]
    elif damage == "byte":
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at:]
    elif damage == "splice":
        stray = draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\\u12", b"\x01", b",", b"}"]))
        raw = raw[:at] + stray + raw[at:]
    return raw


@settings(max_examples=400)
@given(raw=raw_lines(), seq=st.integers(0, 10**6), offset=st.integers(0, 10**9))
def test_fast_record_equals_the_lenient_parser(raw: bytes, seq: int, offset: int) -> None:
    assert fast_record(raw, seq, offset) == index_record(raw, seq, offset)


def succeeded_line(custom_id: str, text: str = "hello") -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": "succeeded", "message": {
        "id": "msg_1", "model": "claude-haiku-4-5", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 10, "output_tokens": 3, "cache_creation_input_tokens": 7,
                  "cache_read_input_tokens": 2, "service_tier": "batch",
                  "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                     "ephemeral_1h_input_tokens": 7}}}}})


def errored_line(custom_id: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": "errored", "error": {
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}}})


def test_well_formed_lines_never_take_the_slow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed comes from the fast path: a well-formed line must not fall back."""
    lines = [succeeded_line("a", "café ☕"), errored_line("b"),
             b'{"custom_id":"c","result":{"type":"expired"}}']
    expected = [index_record(line, seq, 0) for seq, line in enumerate(lines)]

    def refuse(*_: Any) -> None:
        raise AssertionError("fell back to the lenient parser")

    monkeypatch.setattr(line_index, "index_record", refuse)
    rows = [fast_record(line, seq, 0) for seq, line in enumerate(lines)]
    assert [row[:12] + row[14:] for row in rows] == [row[:12] + row[14:] for row in expected]
    assert rows[0][1:12] == ("a", "succeeded", None, None, "end_turn", "claude-haiku-4-5",
                             10, 3, 7, 2, "batch")
    assert rows[0][14:] == (0, 7)
    assert rows[1][1:5] == ("b", "errored", "overloaded_error", "Overloaded")


def test_invalid_utf8_in_skipped_content_is_malformed() -> None:
    """The content is skipped, not decoded; its bytes must still be UTF-8."""
    raw = succeeded_line("a", "good").replace(b"good", b"go\xffod")
    assert fast_record(raw)[2] == MALFORMED


def test_index_lines_counts_offsets_seqs_and_kinds() -> None:
    lines = [succeeded_line("a"), b"", b"  ", b'{"custom_id":"b","res', errored_line("c"),
             b'{"custom_id":"d","result":{"type":"deferred"}}']
    batch = index_lines(lines, 5, 100)
    assert [row[0] for row in batch.rows] == [5, 6, 7, 8]
    assert [row[2] for row in batch.rows] == ["succeeded", MALFORMED, "errored", "deferred"]
    offsets = [100]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    assert [row[12] for row in batch.rows] == [offsets[0], offsets[3], offsets[4], offsets[5]]
    assert (batch.malformed, batch.unknown) == (1, 1)


def test_a_number_beyond_double_range_in_skipped_content_is_the_one_difference() -> None:
    """Skipped content is checked for syntax, not range: orjson refuses 1e999 (JSON allows
    it, and the API never sends one); the result view then shows that line raw."""
    raw = succeeded_line("a").replace(b'"id":"msg_1"', b'"id":1e999')
    assert index_record(raw)[2] == MALFORMED
    assert fast_record(raw)[2] == "succeeded"
