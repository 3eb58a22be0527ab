"""Results downloads under faults: complete only when every result arrived, else says so.

Through the real SDK against the emulator: cut streams, status faults, timeouts, malformed
lines, unknown result types and fields. The store's status is the single source of truth
a caller (the app, `export`) decides on; it must never call a partial download complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from tests.emulator_fixtures import MakeEmulator
from tests.reliability.harness import assert_audit_valid
from tui.core.models import BatchSnapshot
from tui.core.results import MALFORMED, StoreStatus
from tui.emulator import results as emulator_results
from tui.emulator import routes
from tui.emulator.faults import Faults, parse_faults
from tui.emulator.server import RunningEmulator
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.results_store import (
    RESULTS_DOWNLOADED,
    RESULTS_FAILED,
    ResultsDownloadError,
    ResultsStore,
)

SIZE = 300


@dataclass
class Download:
    emu: RunningEmulator
    client: anthropic.AsyncAnthropic
    batch: BatchSnapshot
    store: ResultsStore
    audit: AuditLog
    audit_dir: Path

    @property
    def expected_ids(self) -> set[str]:
        (record,) = self.emu.engine.records()
        return {record.source.custom_id(n) for n in range(record.count)}

    async def ensure(self, spec: str | None = None, **options: Any) -> StoreStatus:
        self.emu.engine.faults = parse_faults(spec)
        try:
            return await self.store.ensure(self.client, self.batch, audit=self.audit, **options)
        finally:
            self.emu.engine.faults = Faults()


# Every fault, with the lines indexed in this process and by index worker processes.
WORKERS = {"in-process": {"workers": 0}, "workers": {"workers": 2, "parallel_from": 1,
                                                     "feed_bytes": 16 << 10}}


@pytest.fixture(params=list(WORKERS))
async def download(
    make_emulator: MakeEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Download]:
    emu = await make_emulator(scenario=f"large:{SIZE}", seed=3)
    api = BatchesAPI.connect("test-key", emu.url, timeout=0.5)
    (batch,) = await api.list_all()
    assert batch.is_ended and batch.request_counts.total == SIZE
    store = ResultsStore(tmp_path / "results", "ws", retry_delay=0.01, **WORKERS[request.param])
    audit = AuditLog(tmp_path / "audit")
    yield Download(emu, api.client, batch, store, audit, tmp_path / "audit")
    if request.param == "workers":  # they did the work: no silent fall back to in-process
        assert store._pool is not None and store._pool.healthy and store._pool._workers
    await audit.close()
    await api.close()
    store.close()


def assert_consistent(download: Download, status: StoreStatus) -> None:
    """What the store says agrees with what it holds, whatever happened."""
    store, batch_id = download.store, download.batch.id
    readable = store.custom_ids(batch_id)
    assert status.results == len(store.query(batch_id)) - store.type_counts(batch_id).get(
        MALFORMED, 0)
    assert readable <= download.expected_ids
    if status.complete:
        assert status.missing == 0 and readable == download.expected_ids
        assert store.raw_path(batch_id).stat().st_size == status.bytes
    else:
        assert status.missing > 0
        assert status.missing == len(download.expected_ids - readable)
    for row in store.query(batch_id):  # every indexed line is a whole line of the raw file
        raw = store.read_raw(batch_id, row.seq)
        if row.type != MALFORMED:
            assert orjson.loads(raw)["custom_id"] == row.custom_id


async def test_a_stream_cut_at_random_points_is_never_complete(download: Download) -> None:
    for _ in range(4):  # each attempt is cut at a new random point
        with pytest.raises(ResultsDownloadError) as failed:
            await download.ensure("cut=1", refresh=True)
        status = failed.value.store_status
        assert status is not None and not status.complete and status.attempts == 3
        assert failed.value.kind == "connection" and failed.value.transient
        assert_consistent(download, status)
        again = download.store.status(download.batch.id)
        assert again is not None and not again.complete and again.missing == status.missing
    events = read_audit(download.audit_dir).records
    failures = [r for r in events if r["event"] == RESULTS_FAILED]
    assert len(failures) == 4 and all(r["data"]["missing"] > 0 for r in failures)
    assert not [r for r in events if r["event"] == RESULTS_DOWNLOADED]
    # Once the network behaves, the same call completes it.
    final = await download.ensure()
    assert final.complete
    assert_consistent(download, final)
    assert_audit_valid(download.audit_dir)


async def test_sometimes_cut_ends_complete_or_says_incomplete(download: Download) -> None:
    outcomes: list[bool] = []
    for _ in range(6):
        try:
            status = await download.ensure("cut=0.6", refresh=True)
        except ResultsDownloadError as exc:
            assert exc.store_status is not None
            status = exc.store_status
        assert_consistent(download, status)
        outcomes.append(status.complete)
    assert True in outcomes  # the retries inside `ensure` get through sometimes


def short_by(count: int) -> Callable[..., Iterator[bytes]]:
    real = emulator_results.result_lines

    def fewer(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        lines = list(real(*args, **kwargs))
        return iter(lines[:-count])

    return fewer


async def test_a_clean_but_short_stream_is_incomplete_with_the_missing_count(
    download: Download, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "result_lines", short_by(7))
    status = await download.ensure()
    assert not status.complete and status.missing == 7 and status.attempts == 3
    assert_consistent(download, status)
    (failed,) = [r for r in read_audit(download.audit_dir).records
                 if r["event"] == RESULTS_FAILED]
    assert failed["data"]["missing"] == 7 and failed["data"]["kind"] == "incomplete"


async def test_malformed_lines_are_kept_but_not_counted(download: Download) -> None:
    status = await download.ensure("malformed=3")
    assert status.complete and status.malformed == 3 and status.lines == SIZE + 3
    assert download.store.type_counts(download.batch.id)[MALFORMED] == 3
    assert_consistent(download, status)


async def test_unknown_result_types_and_fields_are_forward_compatible(
    download: Download,
) -> None:
    status = await download.ensure("unknown=5")
    assert status.complete and status.unknown == 5 and status.malformed == 0
    batch_id = download.batch.id
    assert download.store.type_counts(batch_id)["deferred"] == 5
    groups = {g.result_type: g for g in download.store.error_summary(batch_id)}
    assert groups["deferred"].count == 5 and groups["deferred"].retry_class == "unknown"
    assert_consistent(download, status)


@pytest.mark.parametrize("spec", ["500=1", "529=1", "429=1,retry_after=0.05s", "slow=1s"])
async def test_status_faults_and_timeouts_fail_cleanly_then_recover(
    download: Download, spec: str
) -> None:
    with pytest.raises(ResultsDownloadError) as failed:
        await download.ensure(spec)
    assert failed.value.transient
    status = download.store.status(download.batch.id)
    assert status is None or not status.complete
    final = await download.ensure()
    assert final.complete
    assert_consistent(download, final)
    names = [r["event"] for r in assert_audit_valid(download.audit_dir)]
    assert names == [RESULTS_FAILED, RESULTS_DOWNLOADED]


async def test_an_oversized_number_in_one_line_does_not_sink_the_download(
    download: Download, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = emulator_results.result_lines

    def one_huge(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        for n, line in enumerate(real(*args, **kwargs)):
            if n == 10:
                record = orjson.loads(line)
                record["result"] = {"type": "succeeded", "message": {
                    "model": "m", "usage": {"input_tokens": 2**63, "output_tokens": 2**64 - 1}}}
                line = orjson.dumps(record) + b"\n"
            yield line

    monkeypatch.setattr(routes, "result_lines", one_huge)
    status = await download.ensure()
    assert status.complete
    assert_consistent(download, status)
