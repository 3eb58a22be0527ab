"""A separate batchtop process for the crash tests: it writes, or submits, until it is killed.

Usage:
  python crash_worker.py write DIR TAG COUNT      audit records + ledger submits (COUNT 0: forever)
  python crash_worker.py submit DIR URL STAGE     one submit, then wait to be killed at STAGE:
                                                  "recorded" (before create) or "created"
Prints "ready" (write), or "recorded" / "created <batch id>" (submit), flushed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tui.core.events import Event
from tui.core.requests import BatchRequest
from tui.service.audit import AuditLog
from tui.service.ledger import Ledger

BATCH_IDS = ("msgbatch_shared_a", "msgbatch_shared_b", None)


def requests(tag: str, number: int, count: int = 3) -> list[BatchRequest]:
    return [
        BatchRequest.build(f"{tag}-{number}-{k}", {
            "model": "claude-haiku-4-5", "max_tokens": 8,
            "messages": [{"role": "user", "content": f"{tag} {number} {k} " + "x" * 500}],
        })
        for k in range(count)
    ]


async def write(directory: Path, tag: str, count: int) -> None:
    audit = AuditLog(directory / "audit", actor=f"writer-{tag}")
    ledger = Ledger(directory / "ledger.sqlite3")
    body = tag * 3000
    number = 0
    while count == 0 or number < count:
        batch_id = BATCH_IDS[number % len(BATCH_IDS)]
        await audit.record(Event("test.write", batch_id, {"tag": tag, "n": number, "body": body}))
        submit = ledger.begin_submit(requests(tag, number), label=f"{tag}-{number}")
        if number % 2 == 0:
            ledger.complete_submit(submit, f"msgbatch_{tag}_{number}")
        if number == 0:
            print("ready", flush=True)
        number += 1
    ledger.close()
    await audit.close()


async def submit(directory: Path, url: str, stage: str) -> None:
    ledger = Ledger(directory / "ledger.sqlite3")
    chunk = requests("crash", 0, count=4)
    ledger.begin_submit(chunk, source_file="crash.jsonl", label="crashed")
    if stage == "recorded":
        print("recorded", flush=True)
    else:
        from tui.service.api import BatchesAPI  # the SDK is slow to import: only when needed

        api = BatchesAPI.connect("test-key", url)
        batch = await api.create([request.to_api() for request in chunk])
        print(f"created {batch.id}", flush=True)
    await asyncio.sleep(3600)  # killed here: the ledger never hears how it ended


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "write":
        asyncio.run(write(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
    else:
        asyncio.run(submit(Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
