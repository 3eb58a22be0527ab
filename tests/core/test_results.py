"""Parsing of results lines into index records, and the line splitter."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tui.core.cost import UsageTotals
from tui.core.errors import RetryClass
from tui.core.results import (
    ERROR_MESSAGE_CHARS,
    INDEX_COLUMNS,
    MALFORMED,
    RECORD_FIELDS,
    DownloadProgress,
    IndexRow,
    LineSplitter,
    StoreStatus,
    cache_split,
    index_record,
    is_blank,
    missing_ids,
    parse_line,
    truncate_message,
)


def succeeded(custom_id: str = "req-1", **usage: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "Hello"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 36, **usage},
            },
        },
    }


def errored(custom_id: str, error_type: str, message: str = "boom") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "result": {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": error_type, "message": message},
                "request_id": None,
            },
        },
    }


def line(obj: Any) -> bytes:
    return orjson.dumps(obj)


def bare(custom_id: str, kind: str) -> tuple[Any, ...]:
    """parse_line's answer for a line with nothing but an id and a type."""
    return (custom_id, kind, None, None, None, None, None, None, None, None, None)


def parsed(raw: bytes) -> dict[str, Any]:
    """parse_line's record with its field names."""
    record = parse_line(raw)
    assert len(record) == len(RECORD_FIELDS)
    return dict(zip(RECORD_FIELDS, record, strict=True))


def test_succeeded_line_keeps_model_stop_reason_and_usage() -> None:
    record = parse_line(
        line(
            succeeded(
                "row-42",
                cache_creation_input_tokens=5,
                cache_read_input_tokens=7,
                service_tier="batch",
            )
        )
    )
    assert record == (
        "row-42",
        "succeeded",
        None,
        None,
        "end_turn",
        "claude-sonnet-4-5",
        11,
        36,
        5,
        7,
        "batch",
    )


def test_errored_line_takes_the_nested_error_type_not_the_envelope() -> None:
    record = parsed(line(errored("a", "overloaded_error", "Overloaded")))
    assert record["type"] == "errored"
    assert record["error_type"] == "overloaded_error"  # never the envelope's "error"
    assert record["error_message"] == "Overloaded"


def test_errored_line_without_inner_error_has_no_error_type() -> None:
    obj = {"custom_id": "a", "result": {"type": "errored", "error": {"type": "error"}}}
    assert parse_line(line(obj)) == bare("a", "errored")


def test_canceled_expired_and_unknown_types_are_kept_as_is() -> None:
    for kind in ("canceled", "expired", "weird"):
        assert parse_line(line({"custom_id": "x", "result": {"type": kind}})) == bare("x", kind)


def test_long_error_messages_are_truncated() -> None:
    message = parsed(line(errored("a", "invalid_request_error", "x" * 5000)))["error_message"]
    assert len(message) == ERROR_MESSAGE_CHARS
    assert message.endswith("…")
    assert truncate_message("short") == "short"
    assert truncate_message(None) is None


def test_odd_usage_values_are_dropped_not_trusted() -> None:
    obj = succeeded("a")
    obj["result"]["message"]["usage"] = {"input_tokens": True, "output_tokens": "9"}
    record = parsed(line(obj))
    assert record["input_tokens"] is None
    assert record["output_tokens"] is None


def test_token_counts_sqlite_cannot_hold_are_dropped() -> None:
    obj = succeeded("a", cache_creation_input_tokens=-1, cache_read_input_tokens=2**63 - 1)
    obj["result"]["message"]["usage"].update(input_tokens=2**63, output_tokens=2**64 - 1)
    record = parsed(line(obj))
    assert (record["input_tokens"], record["output_tokens"]) == (None, None)
    assert record["cache_creation_input_tokens"] is None
    assert record["cache_read_input_tokens"] == 2**63 - 1


def test_malformed_lines_become_malformed_records() -> None:
    cases = [
        b'{"custom_id":"cut-7","result":{"type":"succ',
        b"not json at all",
        b"[1, 2]",
        b'{"custom_id": 5, "result": {"type": "succeeded"}}',
        b'{"custom_id": "a", "result": "succeeded"}',
        b'{"custom_id": "a", "result": {"type": 3}}',
        b'{"custom_id": "a", "result": {"type": ""}}',
    ]
    records = [parse_line(case) for case in cases]
    assert all(r == bare(r[0], MALFORMED) for r in records)
    assert records[0][0] == "cut-7"  # salvaged from the broken line
    assert records[1][0] == ""


def test_index_record_frames_the_parsed_fields_as_a_row() -> None:
    raw = line(errored("a", "api_error"))
    row = index_record(raw, seq=7, offset=1234)
    assert row == (7, *parse_line(raw), 1234, len(raw), None, None)
    assert IndexRow(*row).error_type == "api_error"
    assert INDEX_COLUMNS[1:12] == RECORD_FIELDS
    bad = index_record(b'{"custom_id":"x-1","resu', seq=1, offset=5)
    assert bad == (
        1, "x-1", MALFORMED, None, None, None, None, None, None, None, None, None, 5, 24, None, None
    )
    assert INDEX_COLUMNS[-2:] == ("cache_creation_5m", "cache_creation_1h")


def split_of(**usage: Any) -> tuple[int | None, int | None]:
    """The (5-minute, 1-hour) cache writes the index keeps for a succeeded line."""
    record = index_record(line(succeeded("a", **usage)))
    return record[-2], record[-1]


def test_cache_writes_are_split_by_lifetime() -> None:
    split = {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 70}
    assert split_of(cache_creation_input_tokens=100, cache_creation=split) == (30, 70)
    # No split: every write is a 5-minute one.
    assert split_of(cache_creation_input_tokens=100) == (100, 0)
    assert split_of() == (0, 0)
    # A split that misses part of the total never loses those tokens.
    short = {"ephemeral_1h_input_tokens": 70}
    assert split_of(cache_creation_input_tokens=100, cache_creation=short) == (30, 70)
    odd = {"ephemeral_5m_input_tokens": -4, "ephemeral_1h_input_tokens": "70"}
    assert split_of(cache_creation_input_tokens=10, cache_creation=odd) == (10, 0)
    assert split_of(cache_creation=[1, 2]) == (0, 0)
    # Results that are not succeeded have no usage, hence no split.
    assert index_record(line(errored("b", "api_error")))[-2:] == (None, None)


def test_cache_split_prices_as_the_cost_module_reads_raw_usage() -> None:
    cases = [
        {"cache_creation_input_tokens": 100},
        {"cache_creation_input_tokens": 100,
         "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 100}},
        {"cache_creation_input_tokens": 100,
         "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30}},
        {"cache_creation": {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 6}},
    ]
    for usage in cases:
        totals = UsageTotals()
        totals.add("m", usage)
        expected = totals["m"]
        assert cache_split(usage.get("cache_creation"), usage.get("cache_creation_input_tokens")) \
            == (expected.cache_creation_5m, expected.cache_creation_1h), usage


def test_crlf_line_parses() -> None:
    assert parsed(line(succeeded("a")) + b"\r")["type"] == "succeeded"


def test_splitter_offsets_point_at_the_lines() -> None:
    data = b'{"a":1}\n\n{"b":2}\r\n  \n{"c":3}'
    splitter = LineSplitter()
    out = splitter.feed(data[:5]) + splitter.feed(data[5:12])
    assert splitter.pending > 0
    out += splitter.feed(data[12:]) + splitter.flush()
    assert [line for _, line in out] == [b'{"a":1}', b'{"b":2}\r', b'{"c":3}']
    for offset, text in out:
        assert data[offset : offset + len(text)] == text
    assert splitter.flush() == []


lines_strategy = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x") or b"y"), max_size=40
)


@given(lines=lines_strategy, cuts=st.lists(st.integers(0, 2000), max_size=20), final=st.booleans())
def test_splitter_is_independent_of_chunk_boundaries(
    lines: list[bytes], cuts: list[int], final: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if final and lines else b"")
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    splitter = LineSplitter()
    out: list[tuple[int, bytes]] = []
    for start, end in itertools.pairwise(bounds):
        out += splitter.feed(data[start:end])
    out += splitter.flush()
    expected = [ln for ln in lines if not ln.isspace()]
    assert [text for _, text in out] == expected
    assert all(data[o : o + len(t)] == t for o, t in out)
    # The hot-loop form gives the same lines and offsets.
    parts_splitter = LineSplitter()
    again: list[tuple[int, bytes]] = []
    for start, end in itertools.pairwise(bounds):
        offset, parts = parts_splitter.feed_parts(data[start:end])
        for part in parts:
            if not is_blank(part):
                again.append((offset, part))
            offset += len(part) + 1
    assert again + parts_splitter.flush() == out


def row(**kw: Any) -> IndexRow:
    base: dict[str, Any] = dict(
        seq=0,
        custom_id="a",
        type="succeeded",
        error_type=None,
        error_message=None,
        stop_reason=None,
        model=None,
        input_tokens=None,
        output_tokens=None,
        cache_creation_input_tokens=None,
        cache_read_input_tokens=None,
        service_tier=None,
        offset=0,
        length=1,
    )
    base.update(kw)
    return IndexRow(**base)


def test_index_row_classifies_on_the_nested_type() -> None:
    assert row(type="errored", error_type="overloaded_error").retry_class is RetryClass.RETRYABLE
    assert row(type="errored", error_type="invalid_request_error").retry_class is (
        RetryClass.PERMANENT
    )
    assert row(type="errored", error_type="error").retry_class is RetryClass.UNKNOWN
    assert row(type="expired").retry_class is RetryClass.RETRYABLE
    assert row(type="malformed").retry_class is RetryClass.UNKNOWN
    assert not row(type="weird").is_known_type


def test_total_input_tokens_adds_cache_tokens() -> None:
    r = row(input_tokens=10, cache_creation_input_tokens=5, cache_read_input_tokens=100)
    assert r.total_input_tokens == 115
    assert row().total_input_tokens is None


def test_status_and_progress_arithmetic() -> None:
    status = StoreStatus("b", complete=False, expected=10, lines=7, bytes=100)
    assert status.missing == 3
    assert StoreStatus("b", True, 10, 12, 0).missing == 0
    assert DownloadProgress("b", 1, 5, 50, 10).fraction == 0.5
    assert DownloadProgress("b", 1, 5, 50, 0).fraction == 0.0


def test_missing_ids_keeps_submission_order_once() -> None:
    assert missing_ids(["c", "a", "b", "c", "d"], {"a"}) == ["c", "b", "d"]
    assert missing_ids([], {"a"}) == []
