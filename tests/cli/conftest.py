"""CLI test fixtures: an API key, a threaded emulator, `main` run in-process, golden files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.emulator_fixtures import MakeThreadedEmulator
from tui.cli import main
from tui.core.models import BatchSnapshot
from tui.emulator.threaded import ThreadedEmulator
from tui.service.results_store import ResultsStore, default_root, workspace_key

KEY = "sk-cli-test-key-0123456789"
GOLDEN = Path(__file__).with_name("golden")
UPDATE_ENV = "BATCHTOP_UPDATE_GOLDEN"


@dataclass(frozen=True)
class Ran:
    """What one `batchtop` invocation did."""

    code: int
    out: str
    err: str


@dataclass
class Cli:
    """`cli("ls", "--json")` runs `main` against the emulator and captures its output."""

    emulator: ThreadedEmulator
    capsys: pytest.CaptureFixture[str]

    @property
    def url(self) -> str:
        return self.emulator.url

    def __call__(self, *argv: str) -> Ran:
        self.capsys.readouterr()
        code = main([*argv, "--base-url", self.url])
        captured = self.capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    def sdk(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=KEY, base_url=self.url, max_retries=0)

    def batches(self) -> list[BatchSnapshot]:
        with self.sdk() as client:
            return [BatchSnapshot.from_api(b.model_dump(mode="json"))
                    for b in client.messages.batches.list(limit=1000)]

    def find(self, predicate: Callable[[BatchSnapshot], bool]) -> BatchSnapshot:
        return next(b for b in self.batches() if predicate(b))

    def advance(self, seconds: float) -> None:
        self.emulator.call(lambda: self.emulator.engine.clock.advance(seconds))

    def store(self) -> ResultsStore:
        """The results store `batchtop` uses for this emulator and key."""
        return ResultsStore(default_root(), workspace_key(self.url, KEY))


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return KEY


@pytest.fixture
def make_cli(
    make_threaded_emulator: MakeThreadedEmulator, capsys: pytest.CaptureFixture[str],
    api_key: str,
) -> Callable[..., Cli]:
    """`make_cli(scenario="demo", faults=..., ...)`: a Cli on a fresh threaded emulator."""

    def make(**options: Any) -> Cli:
        options.setdefault("scenario", "demo")
        return Cli(make_threaded_emulator(**options), capsys)

    return make


@pytest.fixture
def cli(make_cli: Callable[..., Cli]) -> Cli:
    """The demo scenario at speed 1 (move time with `cli.advance`)."""
    return make_cli()


def golden(name: str, actual: str | bytes) -> None:
    """Compare with tests/cli/golden/NAME; BATCHTOP_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    data = actual.encode("utf-8") if isinstance(actual, str) else actual
    if os.environ.get(UPDATE_ENV):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert path.exists(), f"missing golden file {path}: run with {UPDATE_ENV}=1 to create it"
    expected = path.read_bytes()
    if isinstance(actual, str):
        assert actual == expected.decode("utf-8")
    else:
        assert actual == expected


@pytest.fixture
def no_tty_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """stdin is not a terminal (as in cron); pytest's own stdin already is not, made explicit."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    yield
