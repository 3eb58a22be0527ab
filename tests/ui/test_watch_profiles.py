"""Several profiles watched side by side: one list with a profile column, each row on its own
workspace's services (results, actions, read-only), every session ended at quit."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixtures import MakeEmulator
from tests.ui.harness import SIZE, column, requests, synced, until
from tui.cli import build_parser
from tui.emulator.server import RunningEmulator
from tui.paths import locations
from tui.service.audit import read_audit
from tui.service.monitor import Degraded, MonitorState
from tui.settings import ConfigError, load_settings
from tui.ui.app import BatchtopApp
from tui.ui.batch_columns import columns_for
from tui.ui.launch import build_app
from tui.ui.screens.batch import BatchScreen
from tui.ui.screens.confirm import ConfirmModal
from tui.ui.watch import merge_states, watch_label
from tui.ui.widgets.batch_summary import Phase

KEY_A = "key-of-workspace-a"
KEY_B = "key-of-workspace-b"


def write_config(a_url: str, b_url: str, watch: str = '["alpha", "beta"]') -> Path:
    path = locations().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
[defaults]
profile = "alpha"
watch_profiles = {watch}

[profiles.alpha]
api_key_env = "KEY_A"
base_url = "{a_url}"

[profiles.beta]
api_key_command = "echo {KEY_B}"
base_url = "{b_url}"
read_only = true
""")
    return path


def args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**{"demo": False, "profile": None, "base_url": None,
                                 "read_only": False, "no_mouse": False,
                                 "watch_profiles": None, **values})


def create(emulator: RunningEmulator, count: int, prefix: str) -> str:
    pairs = [(r["custom_id"], r["params"]) for r in requests(count, prefix)]
    return str(emulator.engine.create(pairs).id)


def header(app: BatchtopApp) -> str:
    screen = app.batches_screen
    assert screen is not None
    return screen.header.plain


def cancel_outcomes() -> list[tuple[str | None, Any]]:
    return [(r.get("batch_id"), r["data"].get("outcome"))
            for r in read_audit(locations().audit).records if r["event"] == "action.cancel"]


def test_watch_profiles_from_the_config_and_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    write_config("http://127.0.0.1:9", "http://127.0.0.1:9")
    settings = load_settings(args())
    assert settings.watch_profiles == ("alpha", "beta")
    assert "[defaults]" in settings.source["watch_profiles"]
    flagged = load_settings(args(watch_profiles="beta, alpha,beta"))
    assert flagged.watch_profiles == ("beta", "alpha")
    assert flagged.source["watch_profiles"] == "--watch-profiles"
    assert build_parser().parse_args(["--watch-profiles", "a,b"]).watch_profiles == "a,b"
    with pytest.raises(ConfigError, match="unknown profiles: nope"):
        load_settings(args(watch_profiles="alpha,nope"))
    write_config("http://127.0.0.1:9", "http://127.0.0.1:9", watch='"alpha"')
    with pytest.raises(ConfigError, match="must be a list"):
        load_settings(args())
    write_config("http://127.0.0.1:9", "http://127.0.0.1:9", watch='["alpha", "gone"]')
    with pytest.raises(ConfigError, match="gone"):
        load_settings(args())


def test_the_profile_column_only_when_several_are_watched() -> None:
    assert "profile" not in [c.key for c in columns_for(False)]
    keys = [c.key for c in columns_for(False, has_profiles=True)]
    assert keys[:2] == ["id", "profile"]
    narrow = columns_for(False, width=90, has_profiles=True)
    assert any(c.key == "profile" for c in narrow)


async def test_two_workspaces_side_by_side(make_emulator: MakeEmulator,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    a = await make_emulator(api_key=KEY_A)
    b = await make_emulator(api_key=KEY_B, error_rate=0.3, seed=7)
    write_config(a.url, b.url)
    monkeypatch.setenv("KEY_A", KEY_A)
    ended_b = create(b, 12, "b")
    b.engine.clock.advance(600)
    running_a = create(a, 2, "a")
    running_b = create(b, 2, "b-live")
    app = build_app(args(), load_settings(args()))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.monitor_state.batches) == 3)
        screen = await synced(pilot)
        assert app.watching
        owners = dict(zip(column(screen, "id"), column(screen, "profile"), strict=True))
        assert owners == {running_a: "alpha", ended_b: "beta", running_b: "beta"}
        assert any(c.key == "profile" for c in screen.table.columns)
        assert "alpha + beta [RO]" in header(app)

        # A read-only profile's row refuses; the other profile's row asks first.
        assert screen.move_to(running_b)
        await pilot.press("c")
        await until(pilot, lambda: cancel_outcomes() == [(running_b, "refused")])
        assert app.settings.profile == "beta" and app.actions.read_only
        assert screen.move_to(running_a)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert app.settings.profile == "alpha" and not app.actions.read_only
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen and app.flows.running is None)

        # Enter on beta's ended batch: its screen downloads from beta's workspace.
        assert screen.move_to(ended_b)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, BatchScreen)
                    and app.screen.phase is Phase.READY)
        assert app.settings.profile == "beta"
        assert str(app.api.client.base_url).startswith(b.url)
    records = read_audit(locations().audit).records
    assert len([r for r in records if r["event"] == "session.ended"]) == 2
    downloaded = [r for r in records if r["event"] == "results.downloaded"]
    assert [r.get("batch_id") for r in downloaded] == [ended_b]


def test_merged_state_names_the_degraded_profile() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    trouble = Degraded("overloaded", "overloaded", "overloaded_error", 529, None, now, now, 1)
    states = {"alpha": MonitorState(synced=True, last_sync=now, api_calls=2),
              "beta": MonitorState(synced=False, degraded=trouble, api_calls=3)}
    merged = merge_states(states).state
    assert not merged.synced and merged.api_calls == 5 and merged.last_sync is None
    assert merged.degraded is not None and merged.degraded.message == "beta: overloaded"
    assert watch_label(["alpha", "beta"], {"beta": True}, states) == "alpha + beta [RO] DEGRADED"


async def test_P_from_several_profiles_stops_them_all(make_emulator: MakeEmulator,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    a = await make_emulator(api_key=KEY_A)
    b = await make_emulator(api_key=KEY_B, seed=7)  # batch ids differ between workspaces
    write_config(a.url, b.url)
    monkeypatch.setenv("KEY_A", KEY_A)
    create(a, 1, "a")
    create(b, 1, "b")
    app = build_app(args(), load_settings(args()))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.monitor_state.batches) == 2)
        apis = [app.api]
        assert app.activate_for([*app.monitor_state.batches]) is False
        await app.switch_profile("alpha").wait()
        await until(pilot, lambda: not app.watching and app.services is not None)
        screen = await synced(pilot)
        assert len(app.monitor_state.batches) == 1 and "alpha" in header(app)
        assert all(api.client.is_closed() for api in apis)
        assert not any(c.key == "profile" for c in screen.table.columns)
    records = read_audit(locations().audit).records
    assert len([r for r in records if r["event"] == "session.ended"]) == 3
