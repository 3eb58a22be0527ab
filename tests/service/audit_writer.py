"""A separate process appending audit records, for the multi-process audit log tests.

Usage: python audit_writer.py DIRECTORY BATCH_ID COUNT PAYLOAD_BYTES TAG
COUNT 0 means forever (until killed). Prints "ready" once the first record is on disk.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tui.core.events import Event
from tui.service.audit import AuditLog


async def main(directory: Path, batch_id: str, count: int, payload: int, tag: str) -> None:
    audit = AuditLog(directory, actor=f"writer-{tag}")
    body = (tag * payload)[:payload]
    number = 0
    while count == 0 or number < count:
        await audit.record(Event("test.write", batch_id, {"tag": tag, "n": number, "body": body}))
        if number == 0:
            print("ready", flush=True)
        number += 1
    await audit.close()


if __name__ == "__main__":
    where, batch, how_many, size, name = sys.argv[1:6]
    asyncio.run(main(Path(where), batch, int(how_many), int(size), name))
