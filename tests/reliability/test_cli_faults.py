"""The CLI under the fault matrix: a non-zero exit and one line, never a traceback or a key.

Commands run in-process (`tui.cli.main`) against a threaded emulator, with a sentinel key in
ANTHROPIC_API_KEY. An export is either complete or absent: no file that looks complete.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import pytest

from tests.reliability.harness import SENTINEL_KEY, assert_audit_valid, files_containing
from tui.cli import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, main
from tui.emulator.faults import Faults, parse_faults
from tui.emulator.threaded import ThreadedEmulator
from tui.service.results_store import ResultsStore

MakeThreaded = Callable[..., ThreadedEmulator]
FAST_429 = "429=1,retry_after=0.01s"


@dataclass
class Cli:
    emu: ThreadedEmulator
    capsys: pytest.CaptureFixture[str]
    tmp: Path
    ended: str
    running: str

    def __call__(self, *argv: str, url: str | None = None) -> tuple[int, str, str]:
        code = main(["--base-url", url or self.emu.url, *argv])
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        assert SENTINEL_KEY not in out + err
        return code, out, err

    def faults(self, spec: str | None) -> None:
        self.emu.engine.faults = parse_faults(spec)

    def requests_file(self, count: int = 3) -> Path:
        path = self.tmp / "requests.jsonl"
        path.write_bytes(b"".join(
            orjson.dumps({"custom_id": f"c{n}", "params": {
                "model": "claude-haiku-4-5", "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}]}}) + b"\n"
            for n in range(count)))
        return path


@pytest.fixture
def cli(
    make_threaded_emulator: MakeThreaded, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)
    monkeypatch.setattr(ResultsStore, "default", _fast_store(ResultsStore.default))
    emu = make_threaded_emulator(scenario="large:60", seed=2, error_rate=0.2)
    (ended,) = [record.id for record in emu.engine.records()]
    running = emu.run(_create(emu))
    yield Cli(emu, capsys, tmp_path, ended, running)
    emu.engine.faults = Faults()


def _fast_store(default: Callable[[str], ResultsStore]) -> Callable[[str], ResultsStore]:
    def make(workspace: str) -> ResultsStore:
        store = default(workspace)
        store.retry_delay = 0.01
        return store

    return staticmethod(make)


async def _create(emu: ThreadedEmulator) -> str:
    from tui.service.api import BatchesAPI

    api = BatchesAPI.connect("any", emu.url)
    try:
        batch = await api.create([{"custom_id": "r", "params": {
            "model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}}])
    finally:
        await api.close()
    return batch.id


def one_error_line(err: str) -> str:
    """Exactly one `batchtop:` line on stderr (a preview may come before it), and it is last."""
    lines = err.splitlines()
    mine = [line for line in lines if line.startswith("batchtop:")]
    assert len(mine) == 1 and lines[-1] == mine[0], err
    return mine[0]


def no_export(path: Path) -> None:
    assert not path.exists()
    assert not list(path.parent.glob(f".{path.name}.*"))


def commands(cli: Cli) -> dict[str, list[str]]:
    return {
        "ls": ["ls"],
        "show": ["show", cli.ended],
        "results": ["results", cli.ended],
        "export": ["export", cli.ended, "-o", str(cli.tmp / "out.jsonl")],
        "cancel": ["cancel", cli.running, "--yes"],
        "delete": ["delete", cli.ended, "--yes"],
        "retry": ["retry", cli.ended, "--yes"],
        "submit": ["submit", str(cli.requests_file()), "--yes"],
    }


COMMANDS = ["ls", "show", "results", "export", "cancel", "delete", "retry", "submit"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_under_429_fails_in_one_line(cli: Cli, name: str) -> None:
    argv = commands(cli)[name]
    before = len(cli.emu.engine)
    cli.faults(FAST_429)
    code, out, err = cli(*argv)
    assert code == EXIT_ERROR
    line = one_error_line(err)
    assert "rate_limit" in line
    assert out == ""
    assert len(cli.emu.engine) == before  # nothing created or deleted
    no_export(cli.tmp / "out.jsonl")


@pytest.mark.parametrize("name", ["ls", "export", "submit"])
def test_connection_refused(cli: Cli, name: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = cli(*commands(cli)[name], url=f"http://127.0.0.1:{port}")
    assert code == EXIT_ERROR and out == ""
    assert "connection" in one_error_line(err).lower()
    no_export(cli.tmp / "out.jsonl")


def test_a_server_error_on_export(cli: Cli) -> None:
    cli.faults("500=1")
    code, _, err = cli(*commands(cli)["export"])
    assert code == EXIT_ERROR and "api_error" in one_error_line(err)
    no_export(cli.tmp / "out.jsonl")


@pytest.mark.parametrize("name", ["results", "export"])
def test_a_cut_results_stream_fails_with_nothing_complete_looking(cli: Cli, name: str) -> None:
    cli.faults("cut=1")
    code, out, err = cli(*commands(cli)[name])
    assert code == EXIT_ERROR and out == ""
    assert "results" in one_error_line(err)
    no_export(cli.tmp / "out.jsonl")
    cli.faults(None)
    code, out, _ = cli(*commands(cli)[name])  # the network is back: complete now
    assert code == EXIT_OK


def test_export_is_complete_with_malformed_and_unknown_lines(cli: Cli) -> None:
    cli.faults("malformed=2,unknown=3")
    path = cli.tmp / "out.jsonl"
    code, _, _ = cli("export", cli.ended, "-o", str(path))
    assert code == EXIT_OK and path.exists()
    lines = path.read_bytes().splitlines()
    parsed = [_json(line) for line in lines]
    assert sum(p is not None for p in parsed) == 60
    ids = {p["custom_id"] for p in parsed if p is not None}
    assert len(ids) == 60


def _json(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def test_json_output_under_a_fault_is_empty_not_partial(cli: Cli) -> None:
    cli.faults(FAST_429)
    code, out, err = cli("--json", "ls")
    assert code == EXIT_ERROR and out == ""
    one_error_line(err)


@pytest.mark.parametrize("name", ["cancel", "delete", "retry", "submit"])
def test_read_only_refuses_every_mutation(cli: Cli, name: str) -> None:
    before = [(r.id, cli.emu.engine.state(r).status) for r in cli.emu.engine.records()]
    code, out, err = cli("--read-only", *commands(cli)[name])
    assert code == EXIT_REFUSED and out == ""
    assert "read-only" in one_error_line(err)
    after = [(r.id, cli.emu.engine.state(r).status) for r in cli.emu.engine.records()]
    assert after == before


def test_no_file_written_by_the_cli_holds_the_key(cli: Cli, isolated_home: Path) -> None:
    for name in COMMANDS:
        cli(*commands(cli)[name])
    cli("--json", "ls")
    assert files_containing(isolated_home, SENTINEL_KEY.encode()) == []
    assert files_containing(cli.tmp, SENTINEL_KEY.encode()) == []


# -- watch --headless --------------------------------------------------------------------------


class Lines:
    """Lines a subprocess prints, collected by a thread, waited on with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, word: str, within: float = 30.0) -> None:
        give_up = time.monotonic() + within
        while not any(word in line for line in self.lines):
            if time.monotonic() > give_up:
                raise AssertionError(f"no {word!r} in {self.lines}")
            time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(10)


def start_watch(url: str, home: Path) -> tuple[subprocess.Popen[str], Lines, Lines]:
    """`batchtop --json watch --headless` in its own process, with a fast cadence."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[cadence]\ndiscover_s = 0.2\nyoung_s = 0.2\n")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "tui", "--base-url", url, "--json", "watch", "--headless"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert watcher.stdout is not None and watcher.stderr is not None
    return watcher, Lines(watcher.stdout), Lines(watcher.stderr)


def stop_watch(watcher: subprocess.Popen[str], out: Lines, err: Lines) -> int:
    watcher.send_signal(signal.SIGTERM)
    code = watcher.wait(30)
    out.join()
    err.join()
    return code


def test_watch_headless_survives_an_outage(
    make_threaded_emulator: MakeThreaded, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)
    emu = make_threaded_emulator(scenario="many:3")
    watcher, out, err = start_watch(emu.url, isolated_home)
    try:
        out.wait_for('"session.started"')
        emu.engine.faults = parse_faults("500=1")
        out.wait_for('"api.error"')
        time.sleep(1.0)  # a few failed polls: the watcher backs off and stays up
        assert watcher.poll() is None
        emu.engine.faults = Faults()
        out.wait_for('"api.recovered"')
    finally:
        code = stop_watch(watcher, out, err)
    assert code == EXIT_OK, err.lines
    records = [orjson.loads(line) for line in out.lines]
    names = [r["event"] for r in records]
    assert names[0] == "session.started" and names[-1] == "session.ended"
    assert names.count("api.error") == names.count("api.recovered") == 1
    assert not any("Traceback" in line for line in err.lines), err.lines
    assert SENTINEL_KEY not in "\n".join(out.lines + err.lines)
    written = assert_audit_valid(isolated_home / "data" / "audit")
    # Printed as written: the same records, each stamped once (no gaps in `seq`).
    assert sorted(records, key=lambda r: r["seq"]) == sorted(written, key=lambda r: r["seq"])
    assert sorted(r["seq"] for r in records) == list(range(len(records)))


def test_watch_headless_recovers_from_an_outage_that_began_before_its_first_sync(
    make_threaded_emulator: MakeThreaded, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)
    emu = make_threaded_emulator(scenario="many:3")
    emu.engine.faults = parse_faults("500=1")
    watcher, out, err = start_watch(emu.url, isolated_home)
    try:
        out.wait_for('"api.error"')
        emu.engine.faults = Faults()
        out.wait_for('"api.recovered"')
        out.wait_for('"batch.discovered"')
    finally:
        code = stop_watch(watcher, out, err)
    assert code == EXIT_OK, err.lines
    names = [orjson.loads(line)["event"] for line in out.lines]
    assert names.count("batch.discovered") == 3


def test_watch_headless_says_when_the_audit_log_cannot_be_written(
    make_threaded_emulator: MakeThreaded, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)
    blocked = isolated_home / "data" / "audit"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the audit directory should be")
    emu = make_threaded_emulator(scenario="many:3")
    watcher, out, err = start_watch(emu.url, isolated_home)
    try:
        out.wait_for('"session.started"')
        err.wait_for("audit", within=4)
    finally:
        stop_watch(watcher, out, err)
    assert not any("Traceback" in line for line in err.lines), err.lines


# -- untrusted text in CLI output ----------------------------------------------------------------

FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\u202c")


def assert_inert(text: str) -> None:
    for sequence in FORBIDDEN:
        assert sequence not in text, f"{sequence!r} reached the terminal"


HOSTILE_ID = "msgbatch_\x1b]0;pwned\x07\u202e\x9b31m"


@pytest.fixture
def hostile_cli(
    make_threaded_emulator: MakeThreaded, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ThreadedEmulator, Callable[..., str]]:
    """The demo workspace, with every batch but the hostile one listed under a hostile id."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL_KEY)
    emu = make_threaded_emulator(scenario="demo")
    hostile = emu.engine.labelled("hostile").id
    describe = emu.engine.describe

    def renamed(record: Any, base_url: str) -> dict[str, Any]:
        body = describe(record, base_url)
        if record.id != hostile and body["processing_status"] != "ended":
            body["id"] = HOSTILE_ID + body["id"]
        return body

    monkeypatch.setattr(emu.engine, "describe", renamed)

    def run(*argv: str) -> str:
        assert main(["--base-url", emu.url, *argv]) == EXIT_OK
        out, err = capsys.readouterr()
        assert_inert(out + err)
        return out

    return emu, run


def test_hostile_text_in_cli_tables_is_inert(
    hostile_cli: tuple[ThreadedEmulator, Callable[..., str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu, run = hostile_cli
    hostile = emu.engine.labelled("hostile").id
    assert "upstream said ␛[2J" in run("show", hostile)
    assert "upstream said" in run("results", hostile, "--format", "table")
    with monkeypatch.context() as terminal:  # CSV is data in a pipe, made inert on a terminal
        terminal.setattr(sys.stdout, "isatty", lambda: True)
        assert "␛]52;c;" in run("results", hostile, "--format", "csv")
    assert "␛]0;pwned␇⟨U+202E⟩" in run("ls")


def test_json_output_escapes_bidi_and_c1(
    hostile_cli: tuple[ThreadedEmulator, Callable[..., str]],
) -> None:
    _, run = hostile_cli
    batches = orjson.loads(run("--json", "ls"))
    assert any(batch["id"].startswith(HOSTILE_ID) for batch in batches)
