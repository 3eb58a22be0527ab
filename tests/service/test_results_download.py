"""A results download on clocks given to the store: its duration and time can be frozen."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

from tests.emulator_fixtures import MakeEmulator
from tests.service.test_results_store import connect_ended
from tui.core.events import RESULTS_DOWNLOADED
from tui.core.models import format_time
from tui.service.audit import AuditLog, read_audit
from tui.service.results_store import ResultsStore

AT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


async def test_a_download_is_timed_and_stamped_by_the_stores_clocks(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    client, batch = await connect_ended(await make_emulator(scenario="large:20"))
    ticks = itertools.count(start=100.0, step=1.5)  # every reading 1.5 s after the last
    store = ResultsStore(tmp_path / "results", "ws", retry_delay=0.0,
                         timer=lambda: next(ticks), clock=lambda: AT)
    async with AuditLog(tmp_path / "audit") as audit:
        status = await store.ensure(client, batch, audit=audit)
    await client.close()
    assert status.complete
    assert status.seconds == 1.5 and status.downloaded_at == format_time(AT)
    (record,) = [r for r in read_audit(tmp_path / "audit").records
                 if r["event"] == RESULTS_DOWNLOADED]
    assert record["data"]["seconds"] == 1.5
    store.close()
