"""Shared pytest set-up: every test gets its own BATCHTOP_HOME and no real API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.emulator_fixtures"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Keep every file a test writes under its own temporary BATCHTOP_HOME."""
    home = tmp_path / "batchtop-home"
    monkeypatch.setenv("BATCHTOP_HOME", str(home))
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    yield home
