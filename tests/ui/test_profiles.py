"""Profiles: the picker (`P`) lists them without keys; a choice restarts the services there."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import OptionList

from tests.ui.harness import SIZE, requests, synced, until
from tui.emulator.server import EmulatorConfig, RunningEmulator, start_emulator
from tui.paths import locations
from tui.service.audit import read_audit
from tui.service.credentials import MissingApiKey
from tui.settings import ProfileSummary, load_settings
from tui.ui.app import BatchtopApp
from tui.ui.launch import ConfiguredProfiles, build_app
from tui.ui.screens.batches import BatchesScreen
from tui.ui.screens.profiles import ProfilesScreen, profile_line

KEY_A = "key-of-workspace-a"
KEY_B = "key-of-workspace-b"


@pytest.fixture
async def workspaces() -> AsyncIterator[tuple[RunningEmulator, RunningEmulator]]:
    a = await start_emulator(EmulatorConfig(scenario="empty", api_key=KEY_A))
    b = await start_emulator(EmulatorConfig(scenario="empty", api_key=KEY_B))
    yield a, b
    await a.stop()
    await b.stop()


def write_config(a: RunningEmulator, b: RunningEmulator) -> Path:
    path = locations().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
[defaults]
profile = "alpha"

[profiles.alpha]
api_key_env = "KEY_A"
base_url = "{a.url}"

[profiles.beta]
api_key_command = "echo {KEY_B}"
base_url = "{b.url}"
read_only = true

[profiles.nokey]
api_key_env = "NOT_SET_ANYWHERE"
base_url = "{b.url}"
""")
    return path


def args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**{"demo": False, "profile": None, "base_url": None,
                                 "read_only": False, "no_mouse": False, **values})


def header(app: BatchtopApp) -> str:
    screen = app.batches_screen
    assert screen is not None
    return screen.header.plain


def test_profile_line_never_shows_a_key() -> None:
    line = profile_line(ProfileSummary("prod", "http://x", True, "key in the config file"),
                        current=True).plain
    assert line.startswith("● prod") and "[RO]" in line and "http://x" in line


def test_configured_profiles_open_and_summaries(
    workspaces: tuple[RunningEmulator, RunningEmulator], monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = workspaces
    write_config(a, b)
    monkeypatch.setenv("KEY_A", KEY_A)
    profiles = ConfiguredProfiles(args(base_url="http://127.0.0.1:9", read_only=False))
    summaries = profiles.summaries(load_settings(args()))
    by_name = {s.name: s for s in summaries}
    assert set(by_name) == {"alpha", "beta", "default", "nokey"}
    assert by_name["beta"].base_url == b.url and by_name["beta"].read_only
    assert by_name["beta"].key_source == "key command"
    assert by_name["alpha"].key_source == "$KEY_A"
    assert KEY_A not in repr(summaries) and KEY_B not in repr(summaries)
    settings, _ = profiles.open("beta")  # --base-url belonged to the first profile
    assert settings.profile == "beta" and settings.base_url == b.url and settings.read_only
    with pytest.raises(MissingApiKey, match="NOT_SET_ANYWHERE"):
        profiles.open("nokey")


async def test_p_switches_to_another_workspace(
    workspaces: tuple[RunningEmulator, RunningEmulator], monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = workspaces
    write_config(a, b)
    monkeypatch.setenv("KEY_A", KEY_A)
    for emulator, sizes in ((a, [2]), (b, [3, 1])):
        for size in sizes:
            emulator.engine.create([(r["custom_id"], r["params"]) for r in requests(size)])
    app = build_app(args(), load_settings(args()))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        assert len(app.monitor_state.batches) == 1 and "alpha" in header(app)
        first_api = app.api
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        options = app.screen.query_one(OptionList)
        listed = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(b.url in line and "[RO]" in line for line in listed)
        assert not any(KEY_A in line or KEY_B in line for line in listed)
        await pilot.press("j")  # alpha → beta
        await pilot.press("enter")
        await until(pilot, lambda: app.settings.profile == "beta" and app.services is not None)
        screen = await synced(pilot)
        assert isinstance(app.screen, BatchesScreen) and app.screen is screen
        assert len(app.monitor_state.batches) == 2
        assert "beta" in header(app) and "[RO]" in header(app)
        assert first_api.client.is_closed()
        assert app.actions.read_only
    sessions = [r for r in read_audit(locations().audit).records
                if r.get("event") == "session.ended"]
    assert len(sessions) == 2  # the first profile's monitor stopped cleanly too


async def test_a_profile_without_key_is_a_toast_and_nothing_stops(
    workspaces: tuple[RunningEmulator, RunningEmulator], monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = workspaces
    write_config(a, b)
    monkeypatch.setenv("KEY_A", KEY_A)
    app = build_app(args(), load_settings(args()))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        services = app.services
        worker = app.switch_profile("nokey")
        await worker.wait()
        assert app.services is services and app.settings.profile == "alpha"
        messages = [n.message for n in app._notifications]
        assert any("NOT_SET_ANYWHERE" in m for m in messages)
