"""The monitor at scale: first rows and full sync at 10,000 batches, idle CPU at 1,000.

The emulator runs in a child process, so the CPU figures are the monitor's alone. Every
figure is printed with its ratio to the target (or to the SDK baseline from the same run).
Run: `.venv/bin/python bench/bench_monitor.py [--many N] [--idle-batches N] [--seconds S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.core.cadence import Cadence, poll_interval
from tui.core.models import BatchSnapshot
from tui.core.timefmt import utcnow
from tui.service.api import ApiCall, BatchesAPI
from tui.service.audit import AuditLog
from tui.service.monitor import Monitor, MonitorState

KEY = "bench-key"
TARGET_FIRST_ROWS_S = 1.0
TARGET_FULL_SYNC_S = 3.0
TARGET_IDLE_CPU = 0.01  # of one core
T = TypeVar("T")


@contextmanager
def emulator(scenario: str) -> Iterator[str]:
    """`batchtop emulator` in a child process; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "emulator", "--scenario", scenario, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"emulator did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def count_batch_files(directory: Path) -> int:
    return sum(1 for _ in directory.glob("batch_*.jsonl"))


async def timed(run: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await run()
    return time.perf_counter() - started, result


def ratio(value: float, target: float, *, lower_is_better: bool = True) -> str:
    share = value / target if target else float("inf")
    verdict = "ok" if (share <= 1.0) == lower_is_better else "MISSED"
    return f"{share:5.2f}x target ({verdict})"


async def bench_sync(url: str, count: int) -> None:
    print(f"== full sync of many:{count}")
    api = BatchesAPI.connect(KEY, url)

    async def typed() -> list[BatchSnapshot]:
        return [
            BatchSnapshot.from_api(b.model_dump(mode="json"))
            async for b in api.client.messages.batches.list(limit=1000)
        ]

    await api.list_all()  # warm the connection and the emulator's pages
    sdk_s, sdk_batches = await timed(typed)
    ours_s, ours = await timed(api.list_all)
    assert [b.id for b in ours] == [b.id for b in sdk_batches]
    print(f"list {len(ours)} batches: SDK typed pages {sdk_s:6.3f} s, orjson pages {ours_s:6.3f} s"
          f"  -> {sdk_s / ours_s:4.1f}x faster than the SDK loop")

    with tempfile.TemporaryDirectory() as tmp:
        audit = AuditLog(Path(tmp))
        monitor = Monitor(api, audit)
        started = time.perf_counter()
        marks: dict[str, float] = {}
        synced = asyncio.Event()

        def watch(state: MonitorState) -> None:
            if state.batches and "first" not in marks:
                marks["first"] = time.perf_counter() - started
            if state.synced and "synced" not in marks:
                marks["synced"] = time.perf_counter() - started
                synced.set()

        monitor.subscribe(watch)
        task = asyncio.create_task(monitor.run())
        await asyncio.wait_for(synced.wait(), 60)
        monitor.stop()
        await task
        drained = time.perf_counter() - started
        await audit.close()
        files = count_batch_files(Path(tmp))
    await api.close()
    first, full = marks["first"], marks["synced"]
    print(f"first rows on screen   {first:6.3f} s   {ratio(first, TARGET_FIRST_ROWS_S)}")
    print(f"full sync              {full:6.3f} s   {ratio(full, TARGET_FULL_SYNC_S)}")
    print(f"audit: {files} batch files, every discovered event on disk after {drained:6.3f} s "
          "(in the background; the UI does not wait for it)")


async def bench_idle(url: str, running_wanted: int, seconds: float) -> None:
    print(f"== idle monitoring, {running_wanted} running batches, {seconds:g} s of real time")
    api = BatchesAPI.connect(KEY, url)
    present = await api.list_all()
    running = sum(1 for b in present if not b.is_ended)
    request = {
        "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
                   "messages": [{"role": "user", "content": "ping"}]},
    }
    for n in range(max(0, running_wanted - running)):
        await api.create([{"custom_id": f"bench-{n}", **request}])
    api.calls.clear()
    calls: Counter[str] = Counter()
    cadence = Cadence()

    def count(call: ApiCall) -> None:
        calls[call.method] += 1

    with tempfile.TemporaryDirectory() as tmp:
        audit = AuditLog(Path(tmp))
        monitor = Monitor(api, audit, cadence)
        synced = asyncio.Event()
        monitor.subscribe(lambda state: synced.set() if state.synced else None)
        task = asyncio.create_task(monitor.run())
        await asyncio.wait_for(synced.wait(), 30)
        await asyncio.sleep(5.0)  # let the first-sync audit burst (one file per batch) finish
        state = monitor.state
        now = utcnow()
        intervals = [
            poll_interval(b, now, cadence) for b in state.batches.values() if not b.is_ended
        ]
        remove = api.add_call_hook(count)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        remove()
        monitor.stop()
        await task
        await audit.close()
    await api.close()
    per_minute = 60.0 / wall
    actual = sum(calls.values()) * per_minute
    per_batch = sum(60.0 / i for i in intervals if i) + 60.0 / cadence.discover_s
    share = cpu / wall
    print(f"batches {len(state.batches)}, running {len(intervals)}")
    print(f"CPU {cpu:6.3f} s over {wall:5.1f} s = {share * 100:5.2f} % of a core   "
          f"{ratio(share, TARGET_IDLE_CPU)}")
    print(f"API calls/min {actual:6.1f} ({dict(calls)}); one retrieve per batch per interval "
          f"would be {per_batch:6.1f}/min -> {actual / per_batch:4.2f}x of that")


async def main(args: argparse.Namespace) -> None:
    with emulator(f"many:{args.many}") as url:
        await bench_sync(url, args.many)
    with emulator(f"many:{args.idle_batches}") as url:
        await bench_idle(url, args.running, args.seconds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--many", type=int, default=10_000)
    parser.add_argument("--idle-batches", type=int, default=1_000)
    parser.add_argument("--running", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
