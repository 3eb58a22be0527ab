"""Soak: random faults for BATCHTOP_SOAK_SECONDS (default 10) with everything running at once.

The monitor polls, batches are created and end, results are downloaded again and again,
while the emulator answers 429/500/529 now and then, cuts results streams and injects
malformed and unknown lines. Memory and open files must stay flat after warm-up; the
monitor must stay up; every stored status must tell the truth; and the audit log must be
valid JSONL from end to end.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixtures import MakeEmulator
from tests.reliability.harness import assert_audit_valid, wait_until, watching
from tui.core.events import API_ERROR, API_RECOVERED
from tui.core.results import StoreStatus
from tui.emulator.faults import Faults, parse_faults
from tui.service.api import ApiError, BatchesAPI
from tui.service.results_store import ResultsDownloadError, ResultsStore

SOAK_SECONDS = float(os.environ.get("BATCHTOP_SOAK_SECONDS", "10"))
FAULTS = "429=0.04,500=0.03,529=0.03,retry_after=0.05s,cut=0.25,malformed=1,unknown=1"
RSS_GROWTH_LIMIT_KB = 30 * 1024
FD_GROWTH_LIMIT = 5


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def request(custom_id: str) -> dict[str, Any]:
    return {"custom_id": custom_id,
            "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
                       "messages": [{"role": "user", "content": custom_id}]}}


@pytest.mark.soak
@pytest.mark.timeout(int(SOAK_SECONDS) + 120)
async def test_soak_under_random_faults(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = await make_emulator(scenario="many:40", seed=5)
    client = BatchesAPI.connect("test-key", emu.url, max_retries=2, timeout=5.0)
    store = ResultsStore(tmp_path / "results", "soak", retry_delay=0.01)
    created = downloads = complete = retried = 0
    samples: dict[str, tuple[int, int]] = {}
    async with watching(emu.url, tmp_path / "audit") as watch:
        await wait_until(lambda: watch.state.synced, what="the first sync")
        emu.engine.faults = parse_faults(FAULTS)
        started = time.monotonic()
        warm_until = started + max(2.0, SOAK_SECONDS * 0.3)
        while (elapsed := time.monotonic() - started) < SOAK_SECONDS:
            try:
                await client.create([request(f"soak-{created}-{n}") for n in range(20)])
                created += 1
            except ApiError:
                pass
            emu.engine.clock.advance(45)  # batches move along and end
            ended = [b for b in watch.state.batches.values()
                     if b.is_ended and b.archived_at is None]
            for batch in ended[-2:]:
                downloads += 1
                status: StoreStatus | None
                try:
                    status = await store.ensure(client.client, batch, refresh=True)
                except ResultsDownloadError as exc:
                    status = exc.store_status
                if status is not None:
                    assert not (status.complete and status.missing), status
                    assert status.complete or status.missing or status.last_error, status
                    complete += status.complete
                    retried += status.attempts > 1
                store.forget(batch.id)  # bounded disk; the next round downloads it again
            assert watch.alive(), "the monitor stopped"
            if "warm" not in samples and time.monotonic() >= warm_until:
                gc.collect()
                samples["warm"] = (rss_kb(), open_fds() - watch.tap.audit.open_files)
            await asyncio.sleep(0.05 if elapsed < SOAK_SECONDS else 0)
        gc.collect()
        samples["end"] = (rss_kb(), open_fds() - watch.tap.audit.open_files)
        emu.engine.faults = Faults()
        await wait_until(lambda: watch.state.degraded is None, what="the final recovery")
    await client.close()
    store.close()

    (rss_warm, fds_warm), (rss_end, fds_end) = samples["warm"], samples["end"]
    faults = [seen for seen in emu.engine.journal if seen.status in (429, 500, 529)]
    report = (f"{SOAK_SECONDS:g}s: {created} batches created, {downloads} downloads "
              f"({complete} complete, {retried} after a retry), "
              f"{watch.api.total_calls} monitor calls, {len(faults)} injected errors, "
              f"RSS {rss_warm} -> {rss_end} kB, fds {fds_warm} -> {fds_end}")
    print(report)
    assert downloads > 0 and complete > 0 and retried > 0 and faults, report
    assert rss_end - rss_warm < RSS_GROWTH_LIMIT_KB, report
    assert fds_end - fds_warm <= FD_GROWTH_LIMIT, report
    records = assert_audit_valid(watch.audit_dir)
    names = [r["event"] for r in records]
    assert names.count(API_ERROR) == names.count(API_RECOVERED) >= 1, report
