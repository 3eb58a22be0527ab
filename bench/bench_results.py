"""Results download and index versus the SDK: cold open, warm reopen, filters and peak RSS.

Starts a `large:N` emulator in this process and prints each figure with its ratio to the
baseline measured in the same run. Run: `.venv/bin/python bench/bench_results.py [--size N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.core.models import BatchSnapshot  # noqa: E402
from tui.core.results import DownloadProgress  # noqa: E402
from tui.emulator.server import EmulatorConfig, start_emulator  # noqa: E402
from tui.service.results_store import ResultsStore  # noqa: E402

WORKSPACE = "bench"
TARGET_COLD = 1.5  # x baseline (at most)
TARGET_TYPED = 10.0  # x faster than the typed loop (at least)
TARGET_WARM = 0.3  # x baseline (at most)
TARGET_QUERY_MS = 50.0
TARGET_RSS_MB = 150.0


def client_for(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="bench-key", base_url=url, max_retries=2)


async def find_batch(client: anthropic.AsyncAnthropic) -> BatchSnapshot:
    page = await client.messages.batches.list(limit=100)
    batches = [BatchSnapshot.from_api(b.model_dump(mode="json")) for b in page.data]
    ended = [b for b in batches if b.is_ended]
    return max(ended, key=lambda b: b.request_counts.total)


async def best_of(runs: int, job: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        value = await job()
        best = min(best, time.perf_counter() - started)
    return best, value


async def baseline(client: anthropic.AsyncAnthropic, batch_id: str) -> tuple[int, int]:
    """The SDK's raw streaming response, split on newlines, every line through orjson."""
    lines = size = 0
    tail = b""
    async with client.messages.batches.with_streaming_response.results(batch_id) as response:
        async for chunk in response.iter_bytes():
            size += len(chunk)
            parts = (tail + chunk).split(b"\n")
            tail = parts.pop()
            for line in parts:
                if line:
                    orjson.loads(line)
                    lines += 1
    if tail:
        orjson.loads(tail)
        lines += 1
    return lines, size


async def typed_loop(client: anthropic.AsyncAnthropic, batch_id: str, cap: int) -> int:
    """The SDK's typed `results()` loop, stopped after `cap` results."""
    decoder = await client.messages.batches.results(batch_id)
    seen = 0
    try:
        async for result in decoder:
            _ = result.result.type
            seen += 1
            if seen >= cap:
                break
    finally:
        await decoder.close()
    return seen


def time_query(job: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        value = job()
        best = min(best, time.perf_counter() - started)
    return best * 1000.0, value


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def line(label: str, value: str, ratio: str, ok: bool) -> None:
    print(f"  {label:<44} {value:>12}   {ratio:<34} {verdict(ok)}")


async def child(url: str, batch_json: str, root: str) -> None:
    """Subprocess body: cold open, first page, all row ids; prints its own peak RSS."""
    batch = BatchSnapshot.from_api(json.loads(batch_json))
    client = client_for(url)
    store = ResultsStore(Path(root), WORKSPACE)
    await store.ensure(client, batch)
    store.query(batch.id, limit=100)
    store.row_ids(batch.id, order_by="custom_id")
    store.query(batch.id, types={"errored"})
    for _ in store.iter_raw(batch.id, types={"errored"}):
        pass
    await client.close()
    store.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"rss_mb": rss}))


def import_rss() -> float:
    code = (
        "import resource, anthropic, orjson, sqlite3;"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


async def main(size: int, runs: int, typed_cap: int) -> int:
    # The typed loop stops early on purpose; the emulator would log each dropped connection.
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    emulator = await start_emulator(EmulatorConfig(scenario=f"large:{size}"))
    client = client_for(emulator.url)
    failures = 0
    try:
        batch = await find_batch(client)
        print(f"batch {batch.id}: {batch.request_counts.total:,} results, emulator {emulator.url}")

        with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
            firsts: list[float] = []

            async def cold() -> int:
                store = ResultsStore(Path(tmp) / f"cold{len(firsts)}", WORKSPACE)
                started = time.perf_counter()
                first: list[float] = []

                def on_progress(progress: DownloadProgress) -> None:
                    if not first and progress.lines and store.query(batch.id, limit=50):
                        first.append(time.perf_counter() - started)

                await store.ensure(client, batch, progress=on_progress)
                rows = store.query(batch.id, limit=100)
                firsts.append(first[0] if first else float("nan"))
                store.close()
                return len(rows)

            # (a) and (c) alternate, best of each: the machine's load changes under us.
            base_s = cold_s = float("inf")
            base_lines = base_bytes = 0
            for _ in range(runs):
                took, (base_lines, base_bytes) = await best_of(
                    1, lambda: baseline(client, batch.id)
                )
                base_s = min(base_s, took)
                cold_s = min(cold_s, (await best_of(1, cold))[0])
            print(f"  baseline: {base_lines:,} lines, {base_bytes / 1e6:.1f} MB, best of {runs}")
            line("(a) SDK raw stream + orjson parse", f"{base_s:.3f} s", "baseline", True)

            # (b) typed loop, capped and extrapolated
            cap = min(typed_cap, base_lines)
            typed_s, typed_seen = await best_of(1, lambda: typed_loop(client, batch.id, cap))
            typed_full = typed_s * base_lines / max(1, typed_seen)
            note = "" if typed_seen >= base_lines else f" (first {typed_seen:,}, extrapolated)"
            line(f"(b) SDK typed results() loop{note}", f"{typed_full:.3f} s",
                 f"{typed_full / base_s:.1f}x baseline", True)

            ratio = cold_s / base_s
            ok = ratio <= TARGET_COLD
            failures += not ok
            line(
                "(c) cold open (download + index + page)",
                f"{cold_s:.3f} s",
                f"{ratio:.2f}x baseline (<= {TARGET_COLD})",
                ok,
            )
            speedup = typed_full / cold_s
            ok = speedup >= TARGET_TYPED
            failures += not ok
            line(
                "    vs typed loop",
                f"{speedup:.1f}x",
                f"faster than (b) (>= {TARGET_TYPED:g}x)",
                ok,
            )
            line("    first rows queryable after", f"{min(firsts):.3f} s", "", True)

            # (d) warm reopen, no network
            root = Path(tmp) / "cold0"

            async def warm() -> int:
                store = ResultsStore(root, WORKSPACE)
                status = store.status(batch.id)
                assert status is not None and status.complete
                status = await store.ensure(client, batch)
                rows = store.query(batch.id, limit=100)
                store.count(batch.id)
                store.close()
                return len(rows)

            warm_s, _ = await best_of(max(3, runs), warm)
            ratio = warm_s / base_s
            ok = ratio <= TARGET_WARM
            failures += not ok
            line(
                "(d) warm reopen (status + ensure + page)",
                f"{warm_s * 1000:.1f} ms",
                f"{ratio:.3f}x baseline (<= {TARGET_WARM})",
                ok,
            )

            # (e) filters over every row
            store = ResultsStore(root, WORKSPACE)
            bid = batch.id
            queries: list[tuple[str, Callable[[], Any], bool]] = [
                ("count type=errored", lambda: store.count(bid, types={"errored"}), True),
                ("row ids type=errored", lambda: store.row_ids(bid, types={"errored"}), True),
                ("page type=errored", lambda: store.query(bid, types={"errored"}, limit=100), True),
                ("row ids, all, by seq", lambda: store.row_ids(bid), True),
                ("row ids, all, by custom_id desc", lambda: store.row_ids(
                    bid, order_by="custom_id", descending=True), True),
                ("row ids, all, by output_tokens", lambda: store.row_ids(
                    bid, order_by="output_tokens", descending=True), True),
                ("row ids search substring '0042'", lambda: store.row_ids(bid, search="0042"), True),
                ("row ids search regex 're:7$'", lambda: store.row_ids(bid, search="re:7$"), True),
                ("type counts", lambda: store.type_counts(bid), True),
                ("error summary", lambda: store.error_summary(bid), True),
                ("usage totals", lambda: store.usage_totals(bid), True),
                ("rows_by_seq window of 100", lambda: store.rows_by_seq(
                    bid, list(range(50_000, 50_100))), True),
            ]
            print(f"  (e) queries over {store.count(bid):,} rows (target <= {TARGET_QUERY_MS:g} ms)")
            for label, job, counted in queries:
                ms, value = time_query(job)
                found = value if isinstance(value, int) else len(value)
                ok = ms <= TARGET_QUERY_MS
                failures += counted and not ok
                line(f"    {label} [{found:,}]", f"{ms:.1f} ms", "", ok)
            store.close()

        # (f) peak RSS of a process that only opens the batch
        with tempfile.TemporaryDirectory(prefix="bench-results-rss-") as tmp:
            args = [sys.executable, __file__, "--child", emulator.url,
                    json.dumps(batch.to_api()), tmp]
            proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE)
            out, _ = await proc.communicate()
            rss = json.loads(out.decode().strip().splitlines()[-1])["rss_mb"]
            ok = rss <= TARGET_RSS_MB
            failures += not ok
            line(
                "(f) peak RSS, process with the batch open",
                f"{rss:.0f} MB",
                f"(<= {TARGET_RSS_MB:g}; import alone {import_rss():.0f} MB)",
                ok,
            )
    finally:
        await client.close()
        await emulator.stop()
    print("all targets met" if not failures else f"{failures} target(s) missed")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--typed-cap", type=int, default=20_000)
    parser.add_argument("--child", nargs=3, metavar=("URL", "BATCH_JSON", "ROOT"))
    options = parser.parse_args()
    if options.child:
        asyncio.run(child(*options.child))
        sys.exit(0)
    sys.exit(asyncio.run(main(options.size, options.runs, options.typed_cap)))
