"""Request files: every mistake reported with its line, defensive reading, splitting, estimates."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.cost import PRICE_UNKNOWN, PriceTable, estimate_cost
from tui.core.requests import (
    MAX_PROBLEMS,
    BatchRequest,
    LineTooLong,
    estimate_tokens,
    iter_lines,
    parse_request_chunks,
    parse_request_lines,
    plan_split,
)


def params(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    base.update(extra)
    return base


def line(custom_id: Any = "r-1", **extra: Any) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "params": params(**extra)})


def parse(*lines: bytes, **kwargs: Any) -> Any:
    return parse_request_lines(list(lines), "req.jsonl", **kwargs)


def by_line(parsed: Any) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for problem in parsed.problems:
        out.setdefault(problem.line, []).append((problem.field, problem.message))
    return out


def test_valid_file_parses_with_sizes() -> None:
    parsed = parse(line("a"), b"", b"   ", line("b") + b"\r")
    assert parsed.ok
    assert [r.custom_id for r in parsed.requests] == ["a", "b"]
    assert [r.line for r in parsed.requests] == [1, 4]
    body = orjson.dumps({"requests": [r.to_api() for r in parsed.requests]})
    # Item sizes (each counting its list comma) add up to the body the SDK sends.
    assert len(b'{"requests":[]}') + sum(r.size_bytes for r in parsed.requests) - 1 == len(body)


def test_sizes_match_the_sdk_encoder() -> None:
    request = BatchRequest.build("u-1", params(system="grüße ✓ \"quoted\""))
    sdk_like = json.dumps(request.to_api(), separators=(",", ":"), ensure_ascii=False)
    assert request.size_bytes == len(sdk_like.encode()) + 1  # + the list comma


def test_every_kind_of_mistake_is_reported_with_its_line() -> None:
    deep = b'{"custom_id":"deep","params":' + b"[" * 1100 + b"]" * 1100 + b"}"
    nested = params(metadata=None)
    value: Any = "x"
    for _ in range(300):
        value = [value]
    nested["system"] = value
    lines: list[bytes | LineTooLong] = [
        b"\xef\xbb\xbf" + line("bom"),                                   # 1 BOM
        b"{not json",                                                     # 2
        b'{"custom_id":"utf","params":"\xff\xfe"}',                       # 3 invalid UTF-8
        line("nul")[:-1] + b"\x00}",                                      # 4 NUL byte
        deep,                                                             # 5 depth > 1024
        b"[1, 2]",                                                        # 6 not an object
        orjson.dumps({"params": params()}),                               # 7 no custom_id
        line("bad id!"),                                                  # 8 pattern
        line("x" * 65),                                                   # 9 too long
        line("ok-1"),                                                     # 10 fine
        line("ok-1"),                                                     # 11 duplicate
        orjson.dumps({"custom_id": "np"}),                                # 12 no params
        orjson.dumps({"custom_id": "nm", "params": {"max_tokens": 5,
                                                    "messages": []}}),    # 13 model, messages
        line("mt", max_tokens=0),                                         # 14
        line("ms", max_tokens="10"),                                      # 15
        line("st", stream=True),                                          # 16
        line("sp", speed="fast"),                                         # 17
        orjson.dumps({"custom_id": "ex", "params": params(), "meta": 1}),  # 18 extra key
        json.dumps({"custom_id": "dd", "params": nested}).encode(),       # 19 too deep to encode
        line("role", messages=[{"role": "system", "content": "x"}]),      # 20
        LineTooLong(40_000_000),                                          # 21
        line("fine-2"),                                                   # 22
    ]
    parsed = parse_request_lines(lines, "req.jsonl")
    found = by_line(parsed)
    assert [r.custom_id for r in parsed.requests] == ["ok-1", "fine-2"]
    assert not parsed.ok
    assert "byte order mark" in found[1][0][1]
    assert "invalid JSON" in found[2][0][1]
    assert "invalid UTF-8" in found[3][0][1]
    assert "NUL byte" in found[4][0][1]
    assert "1024 levels" in found[5][0][1]
    assert "JSON object" in found[6][0][1]
    assert found[7] == [("custom_id", "missing")]
    assert found[8][0][0] == "custom_id" and "letters, digits" in found[8][0][1]
    assert "at most 64" in found[9][0][1]
    assert 10 not in found
    assert found[11] == [("custom_id", "duplicate 'ok-1' (first on line 10)")]
    assert found[12][0][0] == "params"
    assert {f for f, _ in found[13]} == {"params.model", "params.messages"}
    assert found[14] == [("params.max_tokens", "must be at least 1, not 0")]
    assert found[15][0][0] == "params.max_tokens"
    assert found[16][0][0] == "params.stream"
    assert found[17][0][0] == "params.speed"
    assert found[18][0][0] == "'meta'"
    assert "254 levels" in found[19][0][1]
    assert found[20][0][0] == "params.messages[0].role"
    assert "40,000,000 bytes" in found[21][0][1]
    assert 22 not in found
    # The BOM line is still validated after the mark (it is otherwise a good request).
    assert len(found[1]) == 1
    report = parsed.report()
    assert report[0].startswith("req.jsonl:1: ")
    assert "req.jsonl:11: custom_id: duplicate" in report[10 - 1]


def test_problems_are_capped_with_a_count_of_the_rest() -> None:
    parsed = parse(*([b"nope"] * (MAX_PROBLEMS + 500)))
    assert len(parsed.problems) == MAX_PROBLEMS
    assert parsed.problem_count == MAX_PROBLEMS + 500
    assert parsed.report()[-1] == "... and 500 more problems"


def test_empty_file_is_a_problem() -> None:
    parsed = parse(b"", b"\n")
    assert not parsed.ok
    assert parsed.problems[0].message == "no requests in the file"


def test_oversized_line_is_never_held_whole() -> None:
    big = b'{"custom_id":"big","params":"' + b"x" * 5000 + b'"}'
    data = line("a") + b"\n" + big + b"\n" + line("b") + b"\n"
    chunks = [data[i : i + 64] for i in range(0, len(data), 64)]
    seen = list(iter_lines(chunks, max_line_bytes=1000))
    assert seen[1] == LineTooLong(len(big))
    assert all(isinstance(item, LineTooLong) or len(item) <= 1000 for item in seen)
    parsed = parse_request_chunks(chunks, "f.jsonl", max_line_bytes=1000)
    assert [r.custom_id for r in parsed.requests] == ["a", "b"]
    assert parsed.problems[0].line == 2


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    cuts=st.lists(st.integers(min_value=1, max_value=17), min_size=1, max_size=8),
    limit=st.integers(min_value=1, max_value=40),
    trailing=st.booleans(),
)
def test_iter_lines_matches_split_whatever_the_chunking(
    lines: list[bytes], cuts: list[int], limit: int, trailing: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    chunks: list[bytes] = []
    pos = 0
    n = 0
    while pos < len(data):
        step = cuts[n % len(cuts)]
        chunks.append(data[pos : pos + step])
        pos += step
        n += 1
    expected: list[bytes | LineTooLong] = [
        item if len(item) <= limit else LineTooLong(len(item))
        for item in (data.split(b"\n") if data else [])
    ]
    if data.endswith(b"\n") or (expected and expected[-1] == b""):
        expected = expected[:-1]
    got = list(iter_lines(chunks, limit))
    assert got == expected


def _requests(sizes: list[int]) -> list[BatchRequest]:
    return [BatchRequest(f"r{n}", params(), n, size) for n, size in enumerate(sizes)]


def test_split_by_count() -> None:
    chunks = plan_split(_requests([10] * 25), max_per_batch=10)
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [r.custom_id for c in chunks for r in c] == [f"r{n}" for n in range(25)]


def test_split_never_exceeds_the_api_count_limit() -> None:
    many = [BatchRequest(f"r{n}", {}, n, 1) for n in range(100_001)]
    chunks = plan_split(many, max_per_batch=200_000)
    assert [len(c) for c in chunks] == [100_000, 1]


def test_split_by_bytes() -> None:
    chunks = plan_split(_requests([40, 40, 40, 30, 90]), max_per_batch=10, max_bytes=100)
    assert [[r.size_bytes for r in c] for c in chunks] == [[40, 40], [40, 30], [90]]


def test_a_request_bigger_than_a_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="more than"):
        plan_split(_requests([10, 200]), max_bytes=100)
    with pytest.raises(ValueError):
        plan_split(_requests([1]), max_per_batch=0)


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=50), max_size=60),
    per_batch=st.integers(min_value=1, max_value=12),
    max_bytes=st.integers(min_value=50, max_value=300),
)
def test_split_is_ordered_bounded_and_greedy(
    sizes: list[int], per_batch: int, max_bytes: int
) -> None:
    requests = _requests(sizes)
    chunks = plan_split(requests, per_batch, max_bytes)
    assert [r for c in chunks for r in c] == requests
    for n, chunk in enumerate(chunks):
        assert 1 <= len(chunk) <= per_batch
        used = sum(r.size_bytes for r in chunk)
        assert used <= max_bytes
        if n + 1 < len(chunks):  # greedy: the next request would not have fitted
            assert len(chunk) == per_batch or used + chunks[n + 1][0].size_bytes > max_bytes


def test_estimate_of_request_items_matches_the_guides_arithmetic() -> None:
    # $3 / $15 per million; 10,000 requests x (2,000 in + 500 out) = $135 standard, $67.50 batch.
    shared = {"model": "m", "max_tokens": 500,
              "messages": [{"role": "user", "content": "x" * (8_000 - len("user"))}]}
    requests = [BatchRequest(f"r{n}", shared) for n in range(10_000)]
    prices = PriceTable.from_toml('[models."m"]\ninput = 3.0\noutput = 15.0\n')
    cost = estimate_cost((r.to_api() for r in requests), prices)
    assert (cost.input_tokens, cost.max_output_tokens) == (20_000_000, 5_000_000)
    assert cost.max_cost == Decimal("67.50") and cost.standard_max == Decimal(135)
    assert cost.label().startswith("estimate: up to $67.50 at batch rates")


def test_unknown_price_is_left_out_and_named() -> None:
    requests = [BatchRequest.build("a", params(model="known")),
                BatchRequest.build("b", params(model="other"))]
    prices = PriceTable.from_toml('[models."known"]\ninput = 1.0\noutput = 2.0\n')
    cost = estimate_cost((r.to_api() for r in requests), prices)
    assert cost.unknown_models == ("other",) and cost.unknown_requests == 1
    assert cost.label().endswith(f"+ {PRICE_UNKNOWN} for other")
    nothing = estimate_cost((r.to_api() for r in requests), PriceTable({}))
    assert nothing.label() == f"estimate: {PRICE_UNKNOWN} for known, other"


def test_token_estimate_counts_text_and_images_flat() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "A" * 100_000}}
    tokens = estimate_tokens(params(system="s" * 40,
                                    messages=[{"role": "user", "content": [image]}]))
    assert tokens.input_tokens == 1_600 + -(-(40 + len("user") + len("image")) // 4)
    assert tokens.output_tokens_max == 16


def test_untrusted_values_in_messages_are_inert() -> None:
    parsed = parse(line("\x1b[31mred\u202e"))
    message = parsed.problems[0].message
    assert "\x1b" not in message and "\u202e" not in message
    assert "␛" in message


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80), st.sampled_from([line("a"), line("b")])),
                max_size=10))
def test_parser_never_raises_and_accounts_for_every_line(lines: list[bytes]) -> None:
    parsed = parse_request_lines(lines, "fuzz.jsonl")
    assert parsed.lines == len(lines)
    request_lines = {r.line for r in parsed.requests}
    problem_lines = {p.line for p in parsed.problems}
    assert not request_lines & problem_lines
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            assert number in request_lines | problem_lines
    assert len({r.custom_id for r in parsed.requests}) == len(parsed.requests)
