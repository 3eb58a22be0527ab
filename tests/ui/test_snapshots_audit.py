"""SVG snapshots of the audit screen, a timeline and one record (fixed log, frozen clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.ui.test_audit_screen import ALPHA, SIZE, host, settle, write_fixture

Compare = Callable[..., bool]


def press_then_settle(*keys: str) -> Callable[[Pilot[Any]], Any]:
    async def run(pilot: Pilot[Any]) -> None:
        screen = await settle(pilot)
        for key in keys:
            if key.startswith("@"):
                rows = screen.rows
                assert rows is not None
                screen.table.cursor_index = [e.event for e in rows.entries].index(key[1:])
            else:
                await pilot.press(key)
        await settle(pilot)

    return run


def fixture_dir(tmp_path: Path) -> Path:
    asyncio.run(write_fixture(tmp_path))
    return tmp_path


def test_audit_log_newest_first(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(host(fixture_dir(tmp_path)), terminal_size=SIZE,
                        run_before=press_then_settle())


def test_batch_timeline(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(host(fixture_dir(tmp_path), ALPHA), terminal_size=SIZE,
                        run_before=press_then_settle())


def test_hostile_record_detail(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(host(fixture_dir(tmp_path)), terminal_size=SIZE,
                        run_before=press_then_settle("@action.retry", "enter"))
