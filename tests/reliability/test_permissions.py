"""Every file batchtop writes is 0600 in a 0700 directory, whatever the umask says.

A session under ``umask 000`` writes the audit log, the ledger (with its WAL files), the
results store and the config file; then every path under BATCHTOP_HOME is checked. A
config file holding a key that others can read draws a warning.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import SENTINEL_KEY, loose_permissions
from tui.core.events import Event
from tui.core.requests import BatchRequest
from tui.paths import ensure_private_dir, locations
from tui.service.audit import AuditLog
from tui.service.ledger import Ledger
from tui.service.results_store import ResultsStore, workspace_key
from tui.settings import ensure_config_file, load_settings

LINES = (b'{"custom_id":"a","result":{"type":"expired"}}\n'
         b'{"custom_id":"b","result":{"type":"canceled"}}\n')


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: modes must be chosen, not inherited."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


async def test_everything_written_is_private(isolated_home: Path, open_umask: None) -> None:
    assert absent(isolated_home)  # batchtop creates the whole tree itself
    async with AuditLog(locations().audit) as audit:
        await audit.record(Event("batch.discovered", "msgbatch_01A", {}))
        await audit.record(Event("session.started", None, {}))
    with Ledger() as ledger:
        submit = ledger.begin_submit([BatchRequest.build("a", {"model": "m"})])
        ledger.complete_submit(submit, "msgbatch_01A")
        ledger.set_label("msgbatch_01A", "label")
    with ResultsStore.default(workspace_key("http://127.0.0.1:1", SENTINEL_KEY)) as store:
        assert store.ingest("msgbatch_01A", [LINES]).complete
    ensure_config_file()
    assert_private_tree(isolated_home)


def absent(path: Path) -> bool:
    return not path.exists()


def assert_private_tree(home: Path) -> None:
    names = {path.name for path in home.rglob("*")}
    assert {"batchtop.jsonl", "ledger.sqlite3", "index.sqlite3", "config.toml"} <= names
    assert loose_permissions(home) == []
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_missing_parents_are_created_private(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "a" / "b" / "c"
    ensure_private_dir(target)
    for path in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_existing_parents_are_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    ensure_private_dir(shared / "batchtop")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "batchtop").stat().st_mode) == 0o700


@pytest.mark.parametrize("table", ["defaults", "profiles.default"])
def test_a_readable_config_holding_a_key_draws_a_warning(table: str) -> None:
    path = locations().config_file
    ensure_private_dir(path.parent)
    path.write_text(f'[{table}]\napi_key = "{SENTINEL_KEY}"\n')
    path.chmod(0o644)
    settings = load_settings(environ={})
    assert settings.api_key == SENTINEL_KEY
    readable = [w for w in settings.warnings if "readable by others" in w]
    assert len(readable) == 1 and SENTINEL_KEY not in " ".join(settings.warnings)
    path.chmod(0o600)
    private = load_settings(environ={})
    assert not [w for w in private.warnings if "readable by others" in w]


def test_a_readable_config_without_a_key_is_fine() -> None:
    path = locations().config_file
    ensure_private_dir(path.parent)
    path.write_text('[profiles.default]\napi_key_env = "MY_KEY"\n')
    path.chmod(0o644)
    assert load_settings(environ={}).warnings == ()
