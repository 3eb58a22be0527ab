"""Costs come from the results that came back, exactly; ETAs come from history or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.emulator_fixtures import MakeEmulator
from tests.service.test_results_store import downgrade_to_v1
from tui.core.cost import PRICE_UNKNOWN, PriceTable
from tui.core.events import diff_snapshots
from tui.core.models import ENDED, IN_PROGRESS, BatchSnapshot, RequestCounts
from tui.emulator.server import RunningEmulator
from tui.service import audit as audit_module
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.costing import CostService
from tui.service.results_store import ResultsStore
from tui.settings import Settings

OPUS, HAIKU = "claude-opus-4-6", "claude-haiku-4-5"
# Fixed here, so the expected sums do not depend on the shipped table.
RATES = {OPUS: (Decimal(5), Decimal(25)), HAIKU: (Decimal(1), Decimal(5))}
PRICES = PriceTable.from_toml("".join(
    f'[models."{model}"]\ninput = {rate[0]}\noutput = {rate[1]}\n' for model, rate in RATES.items()
))
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultsStore]:
    with ResultsStore(tmp_path / "results", "test") as opened:
        yield opened


@dataclass
class Emulated:
    emu: RunningEmulator
    api: BatchesAPI


@pytest.fixture
async def emulated(make_emulator: MakeEmulator) -> AsyncIterator[Emulated]:
    emu = await make_emulator(error_rate=0.2, seed=3)
    api = BatchesAPI.connect("test-key", emu.url)
    yield Emulated(emu, api)
    await api.close()


def costs_for(store: ResultsStore | None, tmp_path: Path) -> CostService:
    return CostService(store, Settings(), tmp_path / "audit", prices=PRICES)


def request(n: int) -> dict[str, Any]:
    """Opus requests share a 1-hour cached system prompt; Haiku ones cache nothing."""
    if n % 3:
        params: dict[str, Any] = {
            "model": OPUS, "max_tokens": 300,
            "system": [{"type": "text", "text": "Clause rules. " * 200,
                        "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": f"contract {n}"}],
        }
    else:
        params = {"model": HAIKU, "max_tokens": 120,
                  "messages": [{"role": "user", "content": f"ticket {n} " * 40}]}
    return {"custom_id": f"req-{n:03d}", "params": params}


def independent_batch_cost(raw: bytes) -> tuple[Decimal, int, int, int]:
    """(USD at batch rates, succeeded, 1-hour cache writes, cache reads) by the published rules:
    50 % of standard; cache reads 0.1x, 5-minute writes 1.25x, 1-hour writes 2x of input."""
    total = Decimal(0)
    succeeded = one_hour = reads = 0
    for line in raw.splitlines():
        result = orjson.loads(line)["result"]
        if result["type"] != "succeeded":
            continue  # errored, canceled and expired requests are not billed
        succeeded += 1
        message = result["message"]
        usage = message["usage"]
        price_in, price_out = RATES[message["model"]]
        # Without a split, every cache write is a 5-minute one.
        split = usage.get("cache_creation") or {
            "ephemeral_5m_input_tokens": usage.get("cache_creation_input_tokens", 0),
            "ephemeral_1h_input_tokens": 0,
        }
        one_hour += split["ephemeral_1h_input_tokens"]
        reads += usage.get("cache_read_input_tokens", 0)
        standard = (
            usage["input_tokens"] * price_in
            + split["ephemeral_5m_input_tokens"] * price_in * Decimal("1.25")
            + split["ephemeral_1h_input_tokens"] * price_in * 2
            + usage.get("cache_read_input_tokens", 0) * price_in * Decimal("0.1")
            + usage["output_tokens"] * price_out
        ) / 1_000_000
        total += standard / 2
    return total, succeeded, one_hour, reads


async def test_cost_of_a_downloaded_batch_equals_the_sum_over_its_raw_lines(
    emulated: Emulated, store: ResultsStore, tmp_path: Path
) -> None:
    api = emulated.api
    created = await api.create([request(n) for n in range(40)])
    costs = costs_for(store, tmp_path)
    assert costs.batch_cost(created) is None  # still running: nothing to cost
    emulated.emu.engine.clock.advance(3600)
    batch = await api.retrieve(created.id)
    assert batch.processing_status == ENDED and batch.request_counts.errored
    assert costs.batch_cost(batch) is None  # ended, but the results are not stored yet
    await store.ensure(api.client, batch)

    assert await costs.load([batch]) == [batch.id]
    cost = costs.peek(batch.id)
    assert cost is not None and cost == costs.batch_cost(batch)
    expected, succeeded, one_hour, reads = independent_batch_cost(
        store.raw_path(batch.id).read_bytes()
    )
    assert one_hour > 0 and reads > 0  # the priced-differently cases are really there
    assert cost.batch_cost == expected
    assert cost.standard_cost == expected * 2 and cost.saving == expected
    assert cost.usage.requests == succeeded == batch.request_counts.succeeded
    assert cost.cache_hit_rate == reads / cost.usage.total_input
    assert {line.model for line in cost.lines} == {OPUS, HAIKU}
    assert cost.complete and cost.warnings == ()  # every result billed at the batch tier
    assert await costs.load([batch]) == []  # ended results never change: costed once


def result_line(custom_id: str, model: str, tier: str = "batch", kind: str = "succeeded",
                tokens: int = 1_000_000) -> bytes:
    if kind != "succeeded":
        return orjson.dumps({"custom_id": custom_id, "result": {"type": kind}}) + b"\n"
    usage = {"input_tokens": tokens, "output_tokens": tokens, "service_tier": tier}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": "end_turn", "usage": usage}
    return orjson.dumps(
        {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
    ) + b"\n"


def ended(batch_id: str, ended_at: datetime, requests: int = 1,
          duration: timedelta = HOUR) -> BatchSnapshot:
    created = ended_at - duration
    return BatchSnapshot(
        id=batch_id, processing_status=ENDED,
        request_counts=RequestCounts(succeeded=requests), created_at=created,
        expires_at=created + 24 * HOUR, ended_at=ended_at,
    )


def cached_line(custom_id: str, model: str, *, write_5m: int = 0, write_1h: int = 0,
                split: bool = True, tier: str = "batch") -> bytes:
    """A succeeded line with cache writes (split by lifetime when `split`) and cache reads."""
    usage: dict[str, Any] = {
        "input_tokens": 30_000, "output_tokens": 2_000, "cache_read_input_tokens": 90_000,
        "cache_creation_input_tokens": write_5m + write_1h, "service_tier": tier,
    }
    if split:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": write_5m,
                                   "ephemeral_1h_input_tokens": write_1h}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": "end_turn", "usage": usage}
    return orjson.dumps(
        {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
    ) + b"\n"


CACHED_LINES = [
    cached_line("a", OPUS, write_1h=400_000),
    cached_line("b", OPUS, write_5m=50_000, write_1h=60_000, tier="standard"),
    cached_line("c", OPUS, write_5m=70_000, split=False),
    cached_line("d", HAIKU, write_5m=20_000),
    result_line("e", HAIKU, kind="errored"),
]


def test_cost_from_the_index_prices_1h_writes_and_names_other_tiers(
    store: ResultsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ingest("msgbatch_cached", CACHED_LINES)

    def no_raw_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cost comes from the index, not the raw lines")

    monkeypatch.setattr(store, "iter_raw", no_raw_reads)
    monkeypatch.setattr(store, "read_raw", no_raw_reads)
    cost = costs_for(store, tmp_path).batch_cost(ended("msgbatch_cached", NOW, 5))
    assert cost is not None
    expected, succeeded, one_hour, reads = independent_batch_cost(b"".join(CACHED_LINES))
    assert one_hour == 460_000 and succeeded == 4
    assert cost.batch_cost == expected
    assert cost.usage.cache_creation_1h == one_hour and cost.usage.cache_read == reads
    assert cost.warnings == (
        f"{OPUS}: 1 of 3 results report a service tier other than batch; "
        "costs assume batch rates",
    )


def test_a_store_from_before_the_split_costs_the_same_once_reopened(tmp_path: Path) -> None:
    root = tmp_path / "results"
    batch = ended("msgbatch_cached", NOW, 5)
    with ResultsStore(root, "test") as first:
        first.ingest(batch.id, CACHED_LINES)
        before = costs_for(first, tmp_path).batch_cost(batch)
        db_path = first.db_path
    downgrade_to_v1(db_path)
    with ResultsStore(root, "test") as again:
        assert again.backfilled == [batch.id]
        after = costs_for(again, tmp_path).batch_cost(batch)
    assert before is not None and after == before


def test_unknown_models_and_other_tiers_are_named_not_priced(
    store: ResultsStore, tmp_path: Path
) -> None:
    lines = [result_line("a", "claude-mystery-9", tier="standard"),
             result_line("b", "claude-mystery-9"), result_line("c", "x", kind="expired")]
    store.ingest("msgbatch_mystery", lines)
    cost = costs_for(store, tmp_path).batch_cost(ended("msgbatch_mystery", NOW, 3))
    assert cost is not None
    assert cost.label() == PRICE_UNKNOWN and not cost.complete
    assert cost.unknown_models == ("claude-mystery-9",)
    assert cost.usage.requests == 2 and cost.usage.output == 2_000_000  # tokens still counted
    assert cost.warnings == (
        f"claude-mystery-9: {PRICE_UNKNOWN} (add it under [prices] in the config file)",
        "claude-mystery-9: 1 of 2 results report a service tier other than batch; "
        "costs assume batch rates",
    )


def test_a_bad_price_override_falls_back_with_a_warning(tmp_path: Path) -> None:
    settings = Settings(prices={HAIKU: {"input": "lots"}})
    costs = CostService(None, settings, tmp_path / "audit")
    assert costs.prices.lookup(HAIKU) == PriceTable.shipped().lookup(HAIKU)
    assert len(costs.warnings) == 1 and HAIKU in costs.warnings[0]
    override = CostService(None, Settings(prices={HAIKU: {"input": 9}}), tmp_path / "audit")
    assert override.warnings == ()
    price = override.prices.lookup(HAIKU)
    assert price is not None and price.rate.input == 9


async def test_daily_and_profile_totals(store: ResultsStore, tmp_path: Path) -> None:
    # One million input and output tokens of Haiku: ($1 + $5) / 2 = $3.00 at batch rates.
    batches = [
        ended("msgbatch_today_1", NOW - HOUR),
        ended("msgbatch_today_2", NOW - 2 * HOUR),
        ended("msgbatch_yesterday", NOW - 20 * HOUR),
        ended("msgbatch_unstored", NOW - HOUR),
    ]
    for batch in batches[:3]:
        store.ingest(batch.id, [result_line("only", HAIKU)])
    running = replace(batches[0], id="msgbatch_running", processing_status=IN_PROGRESS,
                      ended_at=None)
    costs = costs_for(store, tmp_path)
    assert sorted(await costs.load([*batches, running])) == sorted(b.id for b in batches[:3])
    today = costs.daily_totals([*batches, running], NOW, UTC)
    assert today.batch_cost == Decimal(6) and today.usage.requests == 2
    assert today.label() == "$6.00"
    assert costs.total(batches).batch_cost == Decimal(9)
    assert costs.peek("msgbatch_unstored") is None
    assert costs_for(None, tmp_path).total(batches).label() == "$0.00"


def running(requests: int, age: timedelta = 10 * timedelta(minutes=1)) -> BatchSnapshot:
    created = NOW - age
    return BatchSnapshot(
        id="msgbatch_now", processing_status=IN_PROGRESS,
        request_counts=RequestCounts(processing=requests), created_at=created,
        expires_at=created + 24 * HOUR,
    )


def test_no_history_no_eta(tmp_path: Path) -> None:
    costs = costs_for(None, tmp_path)
    costs.observe({})
    assert costs.eta(running(50), NOW) is None


async def test_eta_from_the_audit_log_and_the_monitors_ended_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ended batches known only from the audit log (from earlier sessions)...
    audit = AuditLog(tmp_path / "audit")
    for n, minutes in enumerate((20, 30, 40)):
        done = ended(f"msgbatch_old{n}", NOW - 2 * HOUR, 40, timedelta(minutes=minutes))
        before = replace(done, processing_status=IN_PROGRESS, ended_at=None)
        for event in diff_snapshots(before, done):
            await audit.record(event)
    await audit.close()
    reads: list[Path] = []

    def counting_read(directory: Path, **kwargs: Any) -> Any:
        reads.append(directory)
        return read_audit(directory, **kwargs)

    monkeypatch.setattr(audit_module, "read_audit", counting_read)
    costs = costs_for(None, tmp_path)
    await costs.load_history()
    batch = running(60)
    costs.observe({batch.id: batch})
    eta = costs.eta(batch, NOW)
    assert eta is not None
    assert eta.basis == "median of 3 batches of 1–100 requests"
    assert eta.expected_end == batch.created_at + timedelta(minutes=30)
    assert costs.eta(ended("msgbatch_x", NOW), NOW) is None  # only running batches

    # ...and ended batches the monitor lists now: the history follows the ended set.
    fresh = ended("msgbatch_new", NOW - HOUR, 50, timedelta(minutes=50))
    costs.observe({batch.id: batch, fresh.id: fresh})
    eta = costs.eta(batch, NOW)
    assert eta is not None and eta.samples == 4
    assert eta.expected_end == batch.created_at + timedelta(minutes=35)
    bigger = replace(batch, request_counts=RequestCounts(processing=5_000))
    fallback = costs.eta(bigger, NOW)
    assert fallback is not None and not fallback.same_size
    assert reads == [tmp_path / "audit"]  # the audit log is read once, not per row


async def test_eta_history_is_the_stores_workspace_only(tmp_path: Path) -> None:
    """Another profile's batches, in the shared audit directory, do not set this one's ETA."""
    audit = AuditLog(tmp_path / "audit")
    for n, (workspace, minutes) in enumerate((("ws-mine", 20), ("ws-mine", 30),
                                              ("ws-mine", 40), ("ws-other", 600))):
        done = ended(f"msgbatch_w{n}", NOW - 2 * HOUR, 40, timedelta(minutes=minutes))
        before = replace(done, processing_status=IN_PROGRESS, ended_at=None)
        for event in diff_snapshots(before, done, workspace):
            await audit.record(event)
    await audit.close()
    with ResultsStore(tmp_path / "data", "ws-mine", workers=0) as store:
        costs = costs_for(store, tmp_path)
        await costs.load_history()
        batch = running(60)
        costs.observe({batch.id: batch})
        eta = costs.eta(batch, NOW)
    assert eta is not None and eta.samples == 3
    assert eta.expected_end == batch.created_at + timedelta(minutes=30)
