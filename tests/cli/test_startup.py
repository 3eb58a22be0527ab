"""`batchtop` starting: what it loads with the collector off, and the collector back on after."""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import tui.cli
from tui import __version__, startup
from tui.commands import common

ROOT = Path(__file__).resolve().parents[2]


class Loads:
    """Records each module `entry` imports and whether the collector was on meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[tuple[str, bool]] = []
        self.frozen = 0
        self.ran: list[argparse.Namespace] = []
        real_import = importlib.import_module

        def recording(name: str, package: str | None = None) -> ModuleType:
            self.names.append((name, gc.isenabled()))
            return real_import(name, package)

        def freeze() -> None:  # the real one would keep this test process's garbage alive
            self.frozen += 1

        monkeypatch.setattr(tui.cli.importlib, "import_module", recording)
        monkeypatch.setattr(startup.gc, "freeze", freeze)
        monkeypatch.setattr(tui.cli, "run", lambda args: self.ran.append(args) or 0)

    def loaded(self, name: str) -> bool:
        return (name, False) in self.names


@pytest.mark.parametrize(
    ("argv", "expected", "not_expected"),
    [
        ([], ["tui.ui.launch"], ["tui.service.api"]),
        (["ls"], ["tui.service.api", "tui.service.monitor"], ["tui.ui.launch"]),
        (["--json", "watch", "--headless"], ["tui.service.api"], ["tui.ui.launch"]),
        (["locate"], [], ["tui.service.api", "tui.ui.launch"]),
    ],
)
def test_entry_loads_what_the_command_needs_with_the_collector_off(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: list[str],
    not_expected: list[str],
) -> None:
    loads = Loads(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["batchtop", *argv])
    assert gc.isenabled()
    assert tui.cli.entry() == 0
    assert gc.isenabled() and loads.frozen == 1
    # Then the command runs, on the arguments parsed once (the app: no handler).
    (ran,) = loads.ran
    assert ran == tui.cli.build_parser().parse_args(argv)
    assert (ran.handler is None) == (argv == [])
    assert all(loads.loaded(name) for name in expected), loads.names
    assert not any(name in dict(loads.names) for name in not_expected), loads.names


def test_a_usage_error_while_loading_still_turns_the_collector_back_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loads = Loads(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["batchtop", "no-such-command"])
    with pytest.raises(SystemExit) as exited:
        tui.cli.entry()
    assert exited.value.code == 2 and "no-such-command" in capsys.readouterr().err
    assert gc.isenabled() and loads.frozen == 1 and loads.ran == []


def test_every_command_that_calls_the_api_preloads_the_sdk() -> None:
    for name in tui.cli.COMMAND_MODULES:
        module = importlib.import_module(name)
        calls_api = "common.run(" in inspect.getsource(module)
        assert (getattr(module, "PRELOAD", ()) == common.API_MODULES) == calls_api, name


def test_python_dash_m_tui_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "tui", "--version"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"batchtop {__version__}"
