"""`batchtop export` of a `large:N` batch versus the best-practices guide's export pattern.

The baseline is the guide's "Export to File" loop: the SDK's typed `results()` iterator, each
result written back as one JSON line. Both run as child processes against an emulator in a
process of its own; the figures are wall time, the ratio to the baseline, and each child's
peak RSS (bounded memory: the export streams). Run: `.venv/bin/python bench/bench_export.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anthropic

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.0  # x the baseline's time, at most (cold: download + index + write)
TARGET_RSS_MB = 150.0
KEY = "bench-key"


def start_emulator(size: int) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "emulator", "--scenario", f"large:{size}", "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    first = process.stdout.readline().decode().strip()
    if not first.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"emulator did not start: {first!r}")
    return process, first.removeprefix("listening on ")


def ended_batch(url: str) -> tuple[str, int]:
    with anthropic.Anthropic(api_key=KEY, base_url=url) as client:
        batches = list(client.messages.batches.list(limit=100))
    batch = max((b for b in batches if b.processing_status == "ended"),
                key=lambda b: b.request_counts.succeeded + b.request_counts.errored)
    counts = batch.request_counts
    return batch.id, counts.succeeded + counts.errored + counts.canceled + counts.expired


def timed_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process, its own figures (wait4)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=errors)
        assert process.stdout is not None
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        took = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{argv[2:4]} failed ({process.returncode}): "
                               f"{errors.read().decode()[-500:]}")
    return took, usage.ru_maxrss / 1024.0, out.decode()


def baseline(url: str, batch_id: str, output: str) -> None:
    """The guide's pattern: the typed `results()` loop writing one JSON line per result."""
    count = 0
    with anthropic.Anthropic(api_key=KEY, base_url=url) as client, open(
        output, "w", encoding="utf-8"
    ) as out:
        for result in client.messages.batches.results(batch_id):
            out.write(result.to_json(indent=None) + "\n")
            count += 1
    print(count)


def main(size: int) -> int:
    emulator, url = start_emulator(size)
    try:
        batch_id, total = ended_batch(url)
        print(f"batch {batch_id}: {total:,} results; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            env = {**os.environ, "BATCHTOP_HOME": str(Path(tmp) / "home"),
                   "ANTHROPIC_API_KEY": KEY}
            export_out = str(Path(tmp) / "export.jsonl")
            cli = [sys.executable, "-m", "tui", "export", batch_id, "--output", export_out,
                   "--base-url", url, "--json"]
            cold_s, export_rss, printed = timed_child(cli, env)
            written = json.loads(printed)["count"]
            warm_s, _, _ = timed_child(cli, env)
            base_out = str(Path(tmp) / "baseline.jsonl")
            base_s, base_rss, counted = timed_child(
                [sys.executable, __file__, "--baseline", url, batch_id, base_out], env)
            size_mb = Path(export_out).stat().st_size / 1e6
        assert written == total == int(counted), (written, total, counted)
        print(f"  {written:,} results, {size_mb:.1f} MB of JSONL")
        ratio = cold_s / base_s
        rows = [
            ("SDK typed results() loop writing JSONL", f"{base_s:.2f} s", "baseline", None),
            ("batchtop export (download + index + write)", f"{cold_s:.2f} s",
             f"{ratio:.2f}x baseline (<= {TARGET_RATIO:g})", ratio <= TARGET_RATIO),
            ("batchtop export again (results stored)", f"{warm_s:.2f} s",
             f"{warm_s / base_s:.2f}x baseline", None),
            ("peak RSS, batchtop export", f"{export_rss:.0f} MB", f"<= {TARGET_RSS_MB:g} MB",
             export_rss <= TARGET_RSS_MB),
            ("peak RSS, the typed loop", f"{base_rss:.0f} MB", "", None),
        ]
        missed = 0
        for label, value, note, ok in rows:
            missed += ok is False
            mark = "" if ok is None else ("ok" if ok else "MISSED")
            print(f"  {label:<44} {value:>9}   {note:<28} {mark}")
        print("all targets met" if not missed else f"{missed} target(s) missed")
    finally:
        emulator.terminate()
        emulator.wait()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--baseline", nargs=3, metavar=("URL", "BATCH_ID", "OUTPUT"))
    options = parser.parse_args()
    if options.baseline:
        baseline(*options.baseline)
        sys.exit(0)
    sys.exit(main(options.size))
