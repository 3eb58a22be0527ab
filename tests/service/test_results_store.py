"""The results store: ingest, index, queries, integrity, and downloads through the real SDK."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import stat
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator_fixtures import MakeEmulator
from tui.core.errors import RetryClass
from tui.core.models import BatchSnapshot, RequestCounts
from tui.core.results import (
    MALFORMED,
    RECORD_FIELDS,
    DownloadProgress,
    ModelTokenSums,
    parse_line,
)
from tui.emulator.faults import parse_faults
from tui.emulator.server import RunningEmulator
from tui.service import results_ingest
from tui.service.audit import AuditLog, read_audit
from tui.service.results_store import (
    RESULTS_DOWNLOADED,
    RESULTS_FAILED,
    ResultsDownloadError,
    ResultsNotReady,
    ResultsStore,
    raw_file_name,
    workspace_key,
)

BATCH = "msgbatch_01TESTTESTTESTTESTTESTTEST"
ERROR_TYPES = ("overloaded_error", "invalid_request_error", "rate_limit_error", "api_error")


def result_line(i: int, kind: str, *, error_type: str = "api_error", tokens: int = 10) -> bytes:
    custom_id = f"req_{i:05d}"
    if kind == "succeeded":
        body: dict[str, Any] = {
            "type": "succeeded",
            "message": {
                "id": f"msg_{i}",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5" if i % 2 else "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "ok " * (i % 7)}],
                "stop_reason": "max_tokens" if i % 5 == 0 else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": tokens,
                    "output_tokens": 2 * tokens,
                    "cache_creation_input_tokens": 1,
                    "cache_read_input_tokens": 3,
                    "service_tier": "batch",
                },
            },
        }
    elif kind == "errored":
        body = {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": error_type, "message": f"{error_type} happened"},
                "request_id": None,
            },
        }
    elif kind == "malformed":
        return f'{{"custom_id":"{custom_id}","result":{{"type":"succ'.encode()
    else:
        body = {"type": kind}
    return orjson.dumps({"custom_id": custom_id, "result": body})


KINDS = ("succeeded", "errored", "canceled", "expired", "mystery", "malformed")


def make_lines(kinds: list[str]) -> list[bytes]:
    return [
        result_line(i, kind, error_type=ERROR_TYPES[i % len(ERROR_TYPES)])
        for i, kind in enumerate(kinds)
    ]


def chunks_of(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    return ResultsStore(tmp_path / "results", "ws-test", retry_delay=0.0, feed_bytes=2048)


def filled(store: ResultsStore, kinds: list[str], batch_id: str = BATCH) -> list[bytes]:
    lines = make_lines(kinds)
    store.ingest(batch_id, [b"\n".join(lines) + b"\n"])
    return lines


MIXED = ["succeeded"] * 12 + ["errored"] * 8 + ["canceled", "expired", "expired", "mystery"]


# -- ingest --------------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kinds=st.lists(st.sampled_from(KINDS), max_size=60),
    cuts=st.lists(st.integers(0, 20_000), max_size=12),
    crlf=st.booleans(),
)
def test_index_equals_the_parsed_lines_whatever_the_chunks(
    tmp_path: Path, kinds: list[str], cuts: list[int], crlf: bool
) -> None:
    store = ResultsStore(tmp_path / "r", "ws")
    lines = make_lines(kinds)
    eol = b"\r\n" if crlf else b"\n"
    data = b"".join(line + eol for line in lines)
    status = store.ingest(
        BATCH, chunks_of(data, cuts), expected=len(lines) - kinds.count("malformed")
    )

    rows = store.query(BATCH)
    expected = [parse_line(line) for line in lines]
    assert [tuple(getattr(r, name) for name in RECORD_FIELDS) for r in rows] == expected
    assert status.complete
    assert (status.lines, status.bytes) == (len(lines), len(data))
    assert status.malformed == kinds.count("malformed")
    assert status.unknown == kinds.count("mystery")
    assert store.type_counts(BATCH) == dict(Counter(kinds))
    assert b"".join(store.iter_raw(BATCH)) == data  # a CR stays part of its line
    for r in rows[:5]:
        assert store.read_raw(BATCH, r.seq).rstrip(b"\r") == lines[r.seq]
    store.close()


def test_raw_file_is_byte_exact_and_offsets_point_into_it(store: ResultsStore) -> None:
    data = b"\n".join(make_lines(MIXED)) + b"\n"
    store.ingest(BATCH, [data[:100], data[100:]])
    assert store.raw_path(BATCH).read_bytes() == data
    for r in store.query(BATCH):
        assert data[r.offset : r.offset + r.length] == store.read_raw(BATCH, r.seq)
    with pytest.raises(KeyError):
        store.read_raw(BATCH, 10_000)


def test_last_line_without_newline_is_indexed(store: ResultsStore) -> None:
    data = b"\n".join(make_lines(["succeeded", "expired"]))
    status = store.ingest(BATCH, [data], expected=2)
    assert status.complete
    assert [r.type for r in store.query(BATCH)] == ["succeeded", "expired"]


def test_short_stream_is_not_complete_and_says_what_is_missing(store: ResultsStore) -> None:
    status = store.ingest(BATCH, [b"\n".join(make_lines(["succeeded"] * 3))], expected=5)
    assert not status.complete
    assert status.missing == 2


def test_malformed_lines_are_counted_and_kept(store: ResultsStore) -> None:
    lines = make_lines(["succeeded", "malformed", "succeeded"])
    status = store.ingest(BATCH, [b"\n".join(lines)], expected=2)
    assert status.complete and status.malformed == 1 and status.lines == 3
    assert status.missing == 0
    short = store.ingest(BATCH, [b"\n".join(lines)], expected=3)
    assert not short.complete and short.missing == 1
    (bad,) = store.query(BATCH, types={MALFORMED})
    assert bad.custom_id == "req_00001"
    assert store.read_raw(BATCH, bad.seq) == lines[1]


def test_ingest_again_replaces_the_batch(store: ResultsStore) -> None:
    filled(store, ["succeeded"] * 10)
    filled(store, ["expired"] * 3)
    assert store.type_counts(BATCH) == {"expired": 3}
    assert store.raw_path(BATCH).stat().st_size == store.status(BATCH).bytes  # type: ignore[union-attr]


# -- queries -------------------------------------------------------------------------------


def test_filters_by_type_error_type_and_retry_class(store: ResultsStore) -> None:
    filled(store, MIXED)
    assert store.count(BATCH) == len(MIXED)
    assert store.count(BATCH, types={"errored", "expired"}) == 10
    assert store.count(BATCH, types=set()) == 0
    overloaded = store.query(BATCH, error_type="overloaded_error")
    assert overloaded and {r.error_type for r in overloaded} == {"overloaded_error"}
    retryable = store.query(BATCH, retry_classes={RetryClass.RETRYABLE})
    assert {r.retry_class for r in retryable} == {RetryClass.RETRYABLE}
    assert {r.type for r in retryable} == {"errored", "expired"}
    assert store.count(BATCH, retry_classes={"permanent"}) == 2


def test_search_substring_is_literal_and_case_insensitive(store: ResultsStore) -> None:
    filled(store, MIXED)
    assert [r.custom_id for r in store.query(BATCH, search="REQ_0001")] == [
        f"req_{i:05d}" for i in range(10, 20)
    ]
    # "_" and "%" are not wildcards.
    assert store.count(BATCH, search="req%") == 0
    assert store.count(BATCH, search="q_0") == len(MIXED)
    assert store.count(BATCH, search="q-0") == 0


def test_search_regex_and_invert(store: ResultsStore) -> None:
    filled(store, MIXED)
    assert store.count(BATCH, search="re:[02468]$") == 12
    assert store.count(BATCH, search="[02468]$", regex=True) == 12
    assert store.count(BATCH, search="re:[02468]$", invert=True) == 12
    assert store.count(BATCH, search="0001", invert=True) == len(MIXED) - 11
    with pytest.raises(ValueError, match="regular expression"):
        store.count(BATCH, search="re:(")


@pytest.mark.parametrize(
    ("order_by", "descending"),
    [("seq", False), ("seq", True), ("custom_id", True), ("output_tokens", True), ("type", False)],
)
@pytest.mark.parametrize(
    "filters",
    [{}, {"types": {"errored", "expired"}}, {"retry_classes": {"retryable"}},
     {"error_type": "api_error"}, {"types": set()}],
)
def test_regex_search_in_python_matches_sqlites(
    store: ResultsStore, order_by: str, descending: bool, filters: dict[str, Any]
) -> None:
    # `query` still filters with SQLite's REGEXP; `row_ids` and `count` match the cached
    # custom_ids in Python. Same rows, same order.
    filled(store, [*MIXED, "malformed"])
    for pattern, invert in itertools.product(
        ["re:[02468]$", "re:^req_0001", "re:", "re:^$"], [False, True]
    ):
        wanted = dict(filters, search=pattern, invert=invert)
        expected = [r.seq for r in store.query(BATCH, order_by=order_by, descending=descending,
                                               **wanted)]
        got = store.row_ids(BATCH, order_by=order_by, descending=descending, **wanted)
        assert got == expected, wanted
        assert store.count(BATCH, **wanted) == len(expected)


def test_regex_cache_follows_the_batchs_rows(store: ResultsStore) -> None:
    filled(store, MIXED)
    assert store.row_ids(BATCH, search="0000[0-4]", regex=True) == [0, 1, 2, 3, 4]
    filled(store, ["expired"] * 3)  # downloaded again, other rows under the same ids
    assert store.row_ids(BATCH, search="0000[0-4]", regex=True) == [0, 1, 2]
    assert store.row_ids(BATCH, search="re:0000[0-4]", types={"errored"}) == []
    # Same view, other patterns (one keystroke after another): the view's rows are reused.
    assert store.row_ids(BATCH, search="re:0", types={"expired"}, descending=True) == [2, 1, 0]
    assert store.row_ids(BATCH, search="re:1", types={"expired"}, descending=True) == [1]
    with sqlite3.connect(store.db_path) as conn:  # a hole in the seqs (no ingest makes one)
        conn.execute("DELETE FROM result_rows WHERE custom_id = 'req_00001'")
        conn.execute("UPDATE batches SET lines = 2")
    assert store.row_ids(BATCH, search="re:0000", descending=True) == [2, 0]
    assert store.row_ids(BATCH, search="re:^$") == []
    store.forget(BATCH)
    assert store.row_ids(BATCH, search="re:.") == []
    assert store.row_ids("msgbatch_never", search="re:.") == []
    with pytest.raises(ValueError, match="regular expression"):
        store.row_ids(BATCH, search="re:[")
    with pytest.raises(ValueError, match="cannot order"):
        store.row_ids(BATCH, search="re:.", order_by="nope")


def test_order_limit_offset_and_row_ids(store: ResultsStore) -> None:
    filled(store, MIXED)
    top = store.query(BATCH, order_by="output_tokens", descending=True, limit=3)
    assert len(top) == 3
    assert top[0].output_tokens == 20
    ids = store.row_ids(BATCH, order_by="custom_id", descending=True)
    assert ids == list(range(len(MIXED) - 1, -1, -1))
    page = store.rows_by_seq(BATCH, [*ids[5:8], 9999])
    assert [r.seq for r in page] == ids[5:8]
    assert store.query(BATCH, limit=2, offset=3) == store.rows_by_seq(BATCH, [3, 4])
    assert store.row_ids(BATCH, types={"expired"}) == [21, 22]
    with pytest.raises(ValueError):
        store.query(BATCH, order_by="seq; DROP TABLE results")


def test_iter_raw_exports_a_filtered_view(store: ResultsStore) -> None:
    lines = filled(store, MIXED)
    out = list(store.iter_raw(BATCH, types={"expired"}))
    assert out == [lines[21] + b"\n", lines[22] + b"\n"]
    backwards = list(store.iter_raw(BATCH, descending=True))
    assert backwards[0] == lines[-1] + b"\n"


def test_error_summary_groups_and_classifies(store: ResultsStore) -> None:
    filled(store, [*MIXED, "malformed"])
    groups = {(g.result_type, g.error_type): g for g in store.error_summary(BATCH)}
    assert ("succeeded", None) not in groups and ("canceled", "canceled") not in groups
    assert groups[("expired", "expired")].count == 2
    assert groups[("expired", "expired")].retry_class is RetryClass.RETRYABLE
    assert groups[("errored", "invalid_request_error")].retry_class is RetryClass.PERMANENT
    assert groups[("errored", "invalid_request_error")].message == "invalid_request_error happened"
    assert groups[("mystery", "mystery")].retry_class is RetryClass.UNKNOWN
    assert groups[("malformed", "malformed")].count == 1
    assert sum(g.count for g in groups.values()) == 8 + 2 + 1 + 1


def test_usage_totals_per_model(store: ResultsStore) -> None:
    filled(store, ["succeeded"] * 4 + ["errored"])
    assert store.usage_totals(BATCH) == {
        # No cache_creation split in these lines: every write is a 5-minute one.
        "claude-haiku-4-5": ModelTokenSums(2, 20, 40, 2, 6, cache_creation_5m=2),
        "claude-sonnet-4-5": ModelTokenSums(2, 20, 40, 2, 6, cache_creation_5m=2),
    }


def usage_line(
    custom_id: str, model: str, *, write_5m: int = 0, write_1h: int = 0, split: bool = True,
    tier: str = "batch",
) -> bytes:
    """A succeeded line with cache writes (the split only when `split`) and a service tier."""
    usage: dict[str, Any] = {
        "input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": write_5m + write_1h, "service_tier": tier,
    }
    if split:
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h,
        }
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": "end_turn", "usage": usage}
    return orjson.dumps(
        {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
    )


SPLIT_LINES = [
    usage_line("a", "claude-opus-4-6", write_1h=400),
    usage_line("b", "claude-opus-4-6", write_5m=50, write_1h=60, tier="standard"),
    usage_line("c", "claude-opus-4-6", write_5m=7, split=False),  # an older API: no split
    usage_line("d", "claude-haiku-4-5", write_5m=20, tier="priority"),
    result_line(4, "errored"),
]


def test_usage_totals_keep_the_cache_split_and_the_service_tiers(store: ResultsStore) -> None:
    store.ingest(BATCH, [b"\n".join(SPLIT_LINES)])
    assert store.usage_totals(BATCH) == {
        "claude-haiku-4-5": ModelTokenSums(1, 100, 10, 20, 1000, 20, 0, non_batch_tier=1),
        "claude-opus-4-6": ModelTokenSums(3, 300, 30, 517, 3000, 57, 460, non_batch_tier=1),
    }
    (row,) = store.query(BATCH, search="b")
    assert (row.cache_creation_5m, row.cache_creation_1h) == (50, 60)


def downgrade_to_v1(db_path: Path) -> None:
    """Make a store look as the first index version left it: no split, no backfill flag."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DROP VIEW results")
    conn.execute("ALTER TABLE result_rows DROP COLUMN cache_creation_5m")
    conn.execute("ALTER TABLE result_rows DROP COLUMN cache_creation_1h")
    conn.execute("ALTER TABLE batches DROP COLUMN split_pending")
    columns = ", ".join(f"result_rows.{c}" for c in V1_COLUMNS)
    conn.execute(f"CREATE VIEW results AS SELECT batches.batch_id, {columns}"
                 " FROM result_rows JOIN batches USING (batch_key)")
    conn.execute("PRAGMA user_version = 1")
    conn.close()


V1_COLUMNS = (
    "seq", "custom_id", "type", "error_type", "error_message", "stop_reason", "model",
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    "service_tier", "offset", "length",
)


def test_a_v1_store_is_migrated_and_its_split_derived_from_the_raw_lines(tmp_path: Path) -> None:
    root = tmp_path / "results"
    with ResultsStore(root, "ws") as first:
        first.ingest(BATCH, [b"\n".join(SPLIT_LINES) + b"\n"])
        first.ingest("msgbatch_gone", [b"\n".join(SPLIT_LINES[:2])])
        totals, rows = first.usage_totals(BATCH), first.query(BATCH)
        db_path = first.db_path
        first.raw_path("msgbatch_gone").unlink()
    downgrade_to_v1(db_path)

    with ResultsStore(root, "ws") as again:  # never refused, never rebuilt
        assert again.backfilled == [BATCH]
        assert again.usage_totals(BATCH) == totals
        assert again.query(BATCH) == rows
        assert again.row_ids(BATCH, search="re:^[ab]$") == [0, 1]
        # Its raw file is gone: the split cannot be derived, every write counts as 5-minute.
        gone = again.usage_totals("msgbatch_gone")["claude-opus-4-6"]
        assert (gone.cache_creation_5m, gone.cache_creation_1h) == (510, 0)
        assert gone.cache_creation_input_tokens == 510 and gone.non_batch_tier == 1
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        view = conn.execute(
            "SELECT cache_creation_1h FROM results WHERE custom_id = 'a' AND batch_id = ?",
            (BATCH,),
        )
        assert view.fetchall() == [(400,)]
    with ResultsStore(root, "ws") as third:
        assert third.backfilled == []  # done once
        assert third.usage_totals(BATCH) == totals


def test_a_raw_file_that_no_longer_matches_is_not_used_to_backfill(tmp_path: Path) -> None:
    root = tmp_path / "results"
    with ResultsStore(root, "ws") as first:
        first.ingest(BATCH, [b"\n".join(SPLIT_LINES)])
        path, db_path = first.raw_path(BATCH), first.db_path
    downgrade_to_v1(db_path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"custom_id":"a"', b'"custom_id":"z"'))  # same size
    with ResultsStore(root, "ws") as again:
        assert again.backfilled == []
        opus = again.usage_totals(BATCH)["claude-opus-4-6"]
        assert (opus.cache_creation_5m, opus.cache_creation_1h) == (517, 0)
        again.ingest(BATCH, [data])  # downloaded again: indexed with the split
        assert again.usage_totals(BATCH)["claude-opus-4-6"].cache_creation_1h == 460
    with ResultsStore(root, "ws") as third:
        assert third.backfilled == []


def test_missing_custom_ids(store: ResultsStore) -> None:
    filled(store, ["succeeded"] * 3 + ["malformed"])
    submitted = [f"req_{i:05d}" for i in range(6)]
    # req_00003 came back only as a malformed line: no usable result, so it is missing.
    assert store.missing_custom_ids(BATCH, submitted) == ["req_00003", "req_00004", "req_00005"]


def test_batches_are_kept_apart(store: ResultsStore) -> None:
    filled(store, ["succeeded"] * 3, batch_id="msgbatch_a")
    filled(store, ["expired"] * 2, batch_id="msgbatch_b")
    assert store.type_counts("msgbatch_a") == {"succeeded": 3}
    assert store.type_counts("msgbatch_b") == {"expired": 2}
    assert store.batch_ids() == ["msgbatch_a", "msgbatch_b"]
    store.forget("msgbatch_a")
    assert store.status("msgbatch_a") is None
    assert not store.raw_path("msgbatch_a").exists()
    assert store.count("msgbatch_b") == 2


# -- files ---------------------------------------------------------------------------------


def test_files_are_private_and_reopen_reads_the_disk(tmp_path: Path) -> None:
    root = tmp_path / "results"
    first = ResultsStore(root, "ws")
    filled(first, MIXED)
    first.close()
    directory = root / "ws"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    again = ResultsStore(root, "ws")
    status = again.status(BATCH)
    assert status is not None and status.complete and status.lines == len(MIXED)
    assert again.count(BATCH, types={"errored"}) == 8


def test_a_raw_file_cut_short_on_disk_is_no_longer_complete(store: ResultsStore) -> None:
    filled(store, MIXED)
    path = store.raw_path(BATCH)
    path.write_bytes(path.read_bytes()[:-10])
    status = store.status(BATCH)
    assert status is not None and not status.complete


def test_workspace_key_never_contains_the_key() -> None:
    key = "sk-ant-api03-secretsecret"
    name = workspace_key("http://127.0.0.1:8123/prefix", key)
    assert "secret" not in name
    assert name.startswith("127.0.0.1_8123_prefix-")
    assert workspace_key(None, key).startswith("api.anthropic.com-")
    assert workspace_key(None, key) != workspace_key(None, key + "x")


def test_unsafe_names_are_refused_or_hashed(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ResultsStore(tmp_path, "../escape")
    assert raw_file_name("msgbatch_01abc") == "msgbatch_01abc.jsonl"
    assert "/" not in raw_file_name("../../etc/passwd")


# -- downloads through the real SDK against the emulator -----------------------------------

SIZE = 300


def sdk(emu: RunningEmulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="test-key", base_url=emu.url, _strict_response_validation=True, max_retries=0
    )


async def connect_ended(
    emu: RunningEmulator,
) -> tuple[anthropic.AsyncAnthropic, BatchSnapshot]:
    """An SDK client on `emu`, and the emulator's first ended batch."""
    client = sdk(emu)
    page = await client.messages.batches.list(limit=20)
    batches = [BatchSnapshot.from_api(b.model_dump(mode="json")) for b in page.data]
    return client, next(b for b in batches if b.is_ended)


async def raw_download(client: anthropic.AsyncAnthropic, batch_id: str) -> bytes:
    async with client.messages.batches.with_streaming_response.results(batch_id) as response:
        return await response.read()


async def test_download_indexes_every_result_and_is_audited(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(await make_emulator(scenario=f"large:{SIZE}"))
    store = ResultsStore(tmp_path / "results", "ws", retry_delay=0.0)
    async with AuditLog(tmp_path / "audit") as audit:
        status = await store.ensure(client, batch, audit=audit)

    assert status.complete and status.lines == SIZE == status.expected
    assert status.missing == 0 and status.malformed == 0
    counts = batch.request_counts
    assert store.type_counts(batch.id) == {
        k: v for k, v in (("succeeded", counts.succeeded), ("errored", counts.errored)) if v
    }
    # Byte-exact: the store's export is what the API sent.
    assert b"".join(store.iter_raw(batch.id)) == await raw_download(client, batch.id)
    (event,) = [r for r in read_audit(tmp_path / "audit", batch_id=batch.id).records]
    assert event["event"] == RESULTS_DOWNLOADED
    assert event["data"]["lines"] == SIZE
    assert event["data"]["bytes"] == status.bytes
    assert event["data"]["seconds"] >= 0
    await client.close()


async def test_error_type_is_the_nested_one(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    client, batch = await connect_ended(
        await make_emulator(scenario=f"large:{SIZE}", error_rate=0.3))
    store = ResultsStore(tmp_path, "ws")
    await store.ensure(client, batch)
    typed: dict[str, str] = {}
    async for result in await client.messages.batches.results(batch.id):
        if result.result.type == "errored":
            assert result.result.error.type == "error"  # the envelope, never the answer
            typed[result.custom_id] = result.result.error.error.type
    rows = store.query(batch.id, types={"errored"})
    assert typed and {r.custom_id: r.error_type for r in rows} == typed
    await client.close()


async def test_first_rows_are_queryable_before_the_download_ends(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(await make_emulator(scenario=f"large:{SIZE}"))
    store = ResultsStore(tmp_path, "ws", feed_bytes=4096)
    early: list[tuple[int, int, int]] = []

    def on_progress(progress: DownloadProgress) -> None:
        if progress.stored < progress.expected:
            early.append((progress.stored, progress.bytes, len(store.query(batch.id, limit=5))))

    await store.ensure(client, batch, progress=on_progress)
    assert any(stored and rows for stored, _, rows in early)
    assert [b for _, b, _ in early] == sorted(b for _, b, _ in early)
    await client.close()


async def test_a_cut_stream_is_downloaded_again(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = await make_emulator(scenario=f"large:{SIZE}", faults="cut=1")
    client, batch = await connect_ended(emu)
    store = ResultsStore(tmp_path / "results", "ws", retry_delay=0.0, feed_bytes=4096)

    def heal(progress: DownloadProgress) -> None:
        emu.engine.faults = parse_faults(None)  # the first stream is already cut short

    async with AuditLog(tmp_path / "audit") as audit:
        status = await store.ensure(client, batch, progress=heal, audit=audit)
    assert status.complete and status.attempts == 2 and status.lines == SIZE
    assert [r.seq for r in store.query(batch.id)] == list(range(SIZE))
    assert store.raw_path(batch.id).stat().st_size == status.bytes
    (event,) = read_audit(tmp_path / "audit", batch_id=batch.id).records
    assert event["event"] == RESULTS_DOWNLOADED and event["data"]["attempts"] == 2
    await client.close()


async def test_a_stream_that_keeps_breaking_leaves_an_incomplete_store(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(
        await make_emulator(scenario=f"large:{SIZE}", faults="cut=1"))
    store = ResultsStore(tmp_path / "results", "ws", attempts=2, retry_delay=0.0)
    async with AuditLog(tmp_path / "audit") as audit:
        with pytest.raises(ResultsDownloadError) as caught:
            await store.ensure(client, batch, audit=audit)
    assert caught.value.transient and caught.value.attempts == 2
    status = store.status(batch.id)
    assert status is not None and not status.complete
    assert status.missing == SIZE - status.lines > 0
    assert status.last_error
    assert store.count(batch.id) == status.lines  # what arrived is kept and queryable
    (event,) = read_audit(tmp_path / "audit", batch_id=batch.id).records
    assert event["event"] == RESULTS_FAILED
    assert event["data"]["missing"] == status.missing and event["data"]["attempts"] == 2
    await client.close()


async def test_malformed_and_unknown_lines_are_counted_not_fatal(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(
        await make_emulator(scenario=f"large:{SIZE}", faults="malformed=2,unknown=3"))
    store = ResultsStore(tmp_path, "ws")
    status = await store.ensure(client, batch)
    assert status.complete
    assert (status.lines, status.malformed, status.unknown) == (SIZE + 2, 2, 3)
    counts = store.type_counts(batch.id)
    assert counts[MALFORMED] == 2 and counts["deferred"] == 3
    groups = {g.result_type: g for g in store.error_summary(batch.id)}
    assert groups["deferred"].retry_class is RetryClass.UNKNOWN
    await client.close()


async def test_reopen_reads_the_store_not_the_network(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = await make_emulator(scenario=f"large:{SIZE}")
    client, batch = await connect_ended(emu)
    first = await ResultsStore(tmp_path, "ws").ensure(client, batch)
    await emu.stop()

    again = ResultsStore(tmp_path, "ws")
    status = await again.ensure(client, batch)  # the emulator is gone: no request may be made
    assert status == first
    assert again.count(batch.id) == SIZE
    assert again.read_raw(batch.id, 0).startswith(b'{"custom_id":')
    await client.close()


async def test_completeness_check_names_what_did_not_come_back(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(await make_emulator(scenario=f"large:{SIZE}"))
    store = ResultsStore(tmp_path, "ws")
    await store.ensure(client, batch)
    returned = sorted(store.custom_ids(batch.id))
    submitted = [*returned[:10], "never-answered", *returned[10:]]
    assert store.missing_custom_ids(batch.id, submitted) == ["never-answered"]
    await client.close()


async def test_refusals_need_no_retry(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = await make_emulator(scenario="empty")
    client = sdk(emu)
    store = ResultsStore(tmp_path / "results", "ws", retry_delay=0.0)
    running = BatchSnapshot.from_api(
        {
            "id": "msgbatch_01x",
            "processing_status": "in_progress",
            "created_at": "2026-01-01T00:00:00Z",
        }
    )
    with pytest.raises(ResultsNotReady):
        await store.ensure(client, running)
    gone = replace(running, id="msgbatch_01gone", processing_status="ended")
    async with AuditLog(tmp_path / "audit") as audit:
        with pytest.raises(ResultsDownloadError) as caught:
            await store.ensure(client, gone, audit=audit)
    assert caught.value.status == 404 and caught.value.attempts == 1
    assert not caught.value.transient
    (event,) = read_audit(tmp_path / "audit", batch_id=gone.id).records
    assert event["event"] == RESULTS_FAILED and event["data"]["status"] == 404
    await client.close()


async def test_two_stores_on_one_directory_download_once(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    # Two processes (here two instances) opening the same batch: the second waits on the
    # first's file lock, then finds the store complete instead of writing over it.
    client, batch = await connect_ended(await make_emulator(scenario=f"large:{SIZE}"))
    a, b = ResultsStore(tmp_path, "ws"), ResultsStore(tmp_path, "ws")
    first, second = await asyncio.gather(a.ensure(client, batch), b.ensure(client, batch))
    assert first.complete and second.complete
    assert 1 in (first.attempts, second.attempts) and b.count(batch.id) == SIZE
    assert store_bytes_match(b, batch.id)
    await client.close()


def store_bytes_match(store: ResultsStore, batch_id: str) -> bool:
    status = store.status(batch_id)
    return status is not None and store.raw_path(batch_id).stat().st_size == status.bytes


async def test_a_cancelled_download_is_resumed_by_the_next_open(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(await make_emulator(scenario=f"large:{SIZE}"))
    store = ResultsStore(tmp_path, "ws", feed_bytes=4096)
    started = asyncio.Event()

    def on_progress(progress: DownloadProgress) -> None:
        if progress.stored:
            started.set()

    task = asyncio.create_task(store.ensure(client, batch, progress=on_progress))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    status = store.status(batch.id)
    assert status is not None and not status.complete
    assert (await store.ensure(client, batch)).complete
    assert store.count(batch.id) == SIZE
    await client.close()


def test_an_index_from_another_version_is_refused_not_rebuilt(tmp_path: Path) -> None:
    ResultsStore(tmp_path, "ws").close()
    with sqlite3.connect(tmp_path / "ws" / "index.sqlite3") as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(ValueError, match="version 99"):
        ResultsStore(tmp_path, "ws")


async def test_a_batch_without_counts_takes_the_stream_as_complete(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(await make_emulator(scenario=f"large:{SIZE}"))
    uncounted = replace(batch, request_counts=RequestCounts())
    status = await ResultsStore(tmp_path, "ws").ensure(client, uncounted)
    assert status.complete and status.expected == status.lines == SIZE
    await client.close()


async def test_a_failing_disk_is_reported_not_retried(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, batch = await connect_ended(await make_emulator(scenario=f"large:{SIZE}"))
    store = ResultsStore(tmp_path / "results", "ws", retry_delay=0.0)

    def full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(results_ingest.Ingest, "feed", full)
    async with AuditLog(tmp_path / "audit") as audit:
        with pytest.raises(ResultsDownloadError, match="disk is full") as caught:
            await store.ensure(client, batch, audit=audit)
    assert not caught.value.transient and caught.value.attempts == 1
    (event,) = read_audit(tmp_path / "audit", batch_id=batch.id).records
    assert event["event"] == RESULTS_FAILED
    await client.close()


def test_retry_class_filter_matches_classify_row_by_row(store: ResultsStore) -> None:
    no_inner = b'{"custom_id":"odd","result":{"type":"errored","error":{"type":"error"}}}'
    lines = [*make_lines([*MIXED, "malformed"]), no_inner]
    store.ingest(BATCH, [b"\n".join(lines)])
    rows = store.query(BATCH)
    for retry_class in RetryClass:
        expected = [r.seq for r in rows if r.retry_class is retry_class]
        assert store.row_ids(BATCH, retry_classes={retry_class}) == expected, retry_class
    assert store.count(BATCH, retry_classes={"unknown"}) == 3  # mystery, malformed, no_inner


def test_each_batch_gets_its_custom_id_index_and_forget_drops_it(store: ResultsStore) -> None:
    def indexes() -> set[str]:
        with sqlite3.connect(store.db_path) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        return {name for (name,) in rows if name.startswith("result_rows_custom_id_")}

    filled(store, ["succeeded"] * 3, batch_id="msgbatch_a")
    filled(store, ["expired"] * 2, batch_id="msgbatch_b")
    assert len(indexes()) == 2
    filled(store, ["errored"], batch_id="msgbatch_a")  # downloaded again: rebuilt, not doubled
    assert len(indexes()) == 2
    store.forget("msgbatch_a")
    assert len(indexes()) == 1
    assert store.row_ids("msgbatch_b", order_by="custom_id", descending=True) == [1, 0]
