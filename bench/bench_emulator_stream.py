"""Emulator results throughput: download `large:100000` over loopback and compare to 100 MB/s.

The first download renders every line; later ones are served from the emulator's body cache.
The target applies to the first.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB_S = 100.0
SIZE = int(os.environ.get("BENCH_EMULATOR_SIZE", "100000"))
HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}


async def download(url: str) -> tuple[int, int, float]:
    """Bytes, lines and seconds for one full results download (results_url from the API)."""
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(headers=HEADERS, timeout=timeout) as session:
        async with session.get(f"{url}/v1/messages/batches") as response:
            batch = (await response.json())["data"][0]
        size = lines = 0
        started = time.perf_counter()
        async with session.get(batch["results_url"]) as response:
            response.raise_for_status()
            async for chunk in response.content.iter_chunked(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
        return size, lines, time.perf_counter() - started


def main() -> int:
    command = [sys.executable, "-m", "tui", "emulator", "--port", "0",
               "--scenario", f"large:{SIZE}"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline().strip()
        if not first.startswith("listening on "):
            print(f"emulator did not start: {first!r}")
            return 1
        url = first.removeprefix("listening on ")
        size, lines, seconds = asyncio.run(download(url))
        _, cached_lines, cached_seconds = asyncio.run(download(url))
    finally:
        server.terminate()
        server.wait(timeout=10)
    rate = size / seconds / 1e6
    print(f"results of large:{SIZE}: {lines} lines, {size / 1e6:.1f} MB in {seconds:.2f} s")
    print(f"throughput {rate:.1f} MB/s, rendered; ratio to the {TARGET_MB_S:.0f} MB/s target: "
          f"{rate / TARGET_MB_S:.2f}x ({'meets' if rate >= TARGET_MB_S else 'BELOW'} target)")
    print(f"again, from the body cache: {size / cached_seconds / 1e6:.1f} MB/s "
          f"({cached_seconds:.2f} s)")
    if lines != SIZE or cached_lines != SIZE:
        print(f"expected {SIZE} lines")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
