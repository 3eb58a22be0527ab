"""`batchtop locate` and BATCHTOP_HOME: every location sits under the chosen home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.cli import main
from tui.paths import locations


def test_home_overrides_every_location(isolated_home: Path) -> None:
    where = locations()
    for path in (where.config, where.data, where.cache, where.audit):
        assert isolated_home in path.parents


def test_locate_prints_json(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["locate", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["audit"].startswith(str(isolated_home))


def test_global_option_before_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "locate"]) == 0
    assert json.loads(capsys.readouterr().out)["config_file"].endswith("config.toml")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("batchtop ")
