"""`build_services`: the one set of services behind the app and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui.emulator.server import RunningEmulator
from tui.paths import locations
from tui.service.actions import ReadOnlyError
from tui.service.audit import read_audit
from tui.service.results_store import workspace_key
from tui.service.wiring import build_services
from tui.settings import Settings

KEY = "test-key"
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


async def test_cli_services_retry_reads_but_never_actions(emulator: RunningEmulator) -> None:
    services = await build_services(Settings(), KEY, emulator.url, max_retries=2)
    try:
        assert services.api.client.max_retries == 2
        assert services.actions.api.client.max_retries == 0  # a create is never sent twice
        assert services.store.directory.name == workspace_key(emulator.url, KEY)
        assert services.actions.audit is services.audit
        assert services.monitor is None and services.alerts is None
        assert services.actions.read_only is False
    finally:
        await services.close()
        await services.close()  # twice is harmless


async def test_monitor_services_share_one_clock_and_session(
    emulator: RunningEmulator, tmp_path: Path,
) -> None:
    ledger = tmp_path / "demo-ledger.sqlite3"
    services = await build_services(Settings(read_only=False), KEY, emulator.url,
                                    clock=lambda: NOW, ledger_path=ledger, read_only=True,
                                    for_monitor=True)
    try:
        assert services.monitor is not None and services.alerts is not None
        assert services.api.client.max_retries == 0
        assert services.actions.api is services.api
        assert services.actions.audit is services.audit  # one writer for the session
        assert services.ledger.path == ledger
        assert services.actions.read_only is True
        assert services.clock() == NOW
    finally:
        await services.close()


async def test_refuse_read_only_records_then_raises(emulator: RunningEmulator) -> None:
    services = await build_services(Settings(), KEY, emulator.url, read_only=True)
    try:
        with pytest.raises(ReadOnlyError) as refused:
            await services.actions.refuse_read_only("label", ["msgbatch_a"])
        assert refused.value.action == "label" and refused.value.targets == ("msgbatch_a",)
        with pytest.raises(ReadOnlyError):
            await services.actions.refuse_read_only("submit", ["requests.jsonl"])
    finally:
        await services.close()
    records = read_audit(locations().audit).records
    refusals = [(r["event"], r["batch_id"], r["data"]["outcome"], r["data"]["reason"],
                 r["data"]["targets"]) for r in records]
    assert refusals == [
        ("action.label", "msgbatch_a", "refused", "read-only", ["msgbatch_a"]),
        ("action.submit", None, "refused", "read-only", ["requests.jsonl"]),
    ]
